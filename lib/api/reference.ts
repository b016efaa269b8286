/**
 * What the console's API reference page (/api-docs) says about the OpenAPI
 * document, computed from the document alone: operations grouped by tag,
 * a schema's type in a few words, a schema's properties as rows, and a curl
 * line for each operation. Pure, so the page stays a thin renderer and this
 * is unit-tested.
 */
export type Json = Record<string, any>;

export interface RefOperation {
  id: string;
  method: string;
  path: string;
  summary: string;
  description: string;
  role: string;
  roleNote: string | null;
  parameters: { name: string; in: string; required: boolean; description: string; type: TypeLabel }[];
  body: { required: boolean; mediaTypes: string[]; type: TypeLabel; example: unknown } | null;
  responses: { status: string; description: string; mediaTypes: string[]; type: TypeLabel | null; headers: string[] }[];
  curl: string;
}

/** A type in words, and the component it names (for a link), if any. */
export interface TypeLabel {
  text: string;
  ref: string | null;
}

export interface PropertyRow {
  /** Dotted below a nested object: "healthcheck.interval". */
  name: string;
  depth: number;
  required: boolean;
  type: TypeLabel;
  notes: string[];
  description: string;
}

const refName = (ref: string) => ref.replace(/^#\/components\/schemas\//, "");

/** "integer 1–100", "one of tcp, udp", "array of Backend", "string or null". */
export function typeLabel(s: Json | undefined): TypeLabel {
  if (!s || Object.keys(s).length === 0 || (Object.keys(s).length === 1 && "description" in s)) return { text: "any", ref: null };
  if (s.$ref) return { text: refName(s.$ref), ref: refName(s.$ref) };
  if (s.enum) return { text: `one of ${s.enum.map((v: unknown) => JSON.stringify(v)).join(", ")}`, ref: null };
  if ("const" in s) return { text: JSON.stringify(s.const), ref: null };
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) {
    const parts = (alternatives as Json[]).map(typeLabel);
    return { text: parts.map((p) => p.text).join(" or "), ref: parts.find((p) => p.ref)?.ref ?? null };
  }
  if (s.allOf) {
    const parts = (s.allOf as Json[]).map(typeLabel);
    return { text: parts.map((p) => p.text).join(" and "), ref: parts.find((p) => p.ref)?.ref ?? null };
  }
  const t = Array.isArray(s.type) ? s.type.join(" or ") : (s.type as string | undefined);
  if (t === "array") {
    const item = typeLabel(s.items);
    return { text: `array of ${item.text}`, ref: item.ref };
  }
  if (t === "object" && !s.properties && s.additionalProperties && typeof s.additionalProperties === "object") {
    const v = typeLabel(s.additionalProperties);
    return { text: `map of name → ${v.text}`, ref: v.ref };
  }
  return { text: t ?? "any", ref: null };
}

function notesOf(s: Json): string[] {
  const out: string[] = [];
  if (s.minimum !== undefined && s.maximum !== undefined) out.push(`${s.minimum}–${s.maximum}`);
  else if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
  else if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined && s.maxLength !== undefined) out.push(`${s.minLength}–${s.maxLength} characters`);
  else if (s.maxLength !== undefined) out.push(`at most ${s.maxLength} characters`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  if (s.pattern) out.push(`pattern ${s.pattern}`);
  if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
  if (s.format) out.push(s.format);
  return out;
}

/** A schema's properties as rows, nested objects (not references) expanded below their property. */
export function propertyRows(s: Json, prefix = "", depth = 0): PropertyRow[] {
  const props: Record<string, Json> = s.properties ?? {};
  const required = new Set<string>(s.required ?? []);
  return Object.entries(props).flatMap(([name, p]) => {
    const row: PropertyRow = { name: prefix + name, depth, required: required.has(name), type: typeLabel(p), notes: notesOf(p), description: p.description ?? "" };
    const inner = p.type === "object" && p.properties ? p : p.type === "array" && p.items?.type === "object" && p.items.properties ? p.items : null;
    const nullable = (p.anyOf as Json[] | undefined)?.find((x) => x.type === "object" && x.properties);
    const nested = inner ?? nullable;
    return [row, ...(nested && depth < 3 ? propertyRows(nested, `${prefix}${name}${inner === p.items ? "[]" : ""}.`, depth + 1) : [])];
  });
}

const EXAMPLE_PARAMS: Record<string, string> = { name: "web", mark: "0x200" };

/** One curl line: the bearer token from $NATFARM_TOKEN, the console's certificate, the example body. */
export function curlLine(baseUrl: string, method: string, path: string, o: { ifMatch?: "required" | "optional" | null; body?: unknown; mergePatch?: boolean; query?: string } = {}): string {
  const url = `${baseUrl}${path.replace(/\{(\w+)\}/g, (_m, p: string) => EXAMPLE_PARAMS[p] ?? p)}${o.query ?? ""}`;
  const parts = ["curl --cacert cert.pem", `-H "Authorization: Bearer $NATFARM_TOKEN"`];
  if (method !== "get") parts.push(`-X ${method.toUpperCase()}`);
  if (o.ifMatch) parts.push(`-H 'If-Match: "<ETag>"'`);
  if (o.body !== undefined) {
    parts.push(`-H "Content-Type: ${o.mergePatch ? "application/merge-patch+json" : "application/json"}"`);
    parts.push(`-d '${JSON.stringify(o.body).replaceAll("'", "'\\''")}'`);
  }
  parts.push(`'${url}'`);
  return parts.join(" \\\n  ");
}

/** The document's operations, grouped by its tags, in the document's order. */
export function referenceOf(doc: Json, baseUrl: string): { tags: { name: string; description: string; operations: RefOperation[] }[]; schemas: [string, Json][] } {
  const ops: (RefOperation & { tag: string })[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<Json>(item)) {
      if (method === "parameters") continue;
      const params: Json[] = op.parameters ?? [];
      const json = op.requestBody?.content?.["application/json"];
      const ifMatch = params.find((p) => p.name === "If-Match");
      const requiredQuery = params.filter((p) => p.in === "query" && p.required);
      ops.push({
        tag: op.tags?.[0] ?? "Other",
        id: op.operationId,
        method,
        path,
        summary: op.summary ?? "",
        description: op.description ?? "",
        role: op["x-natfarm-role"] ?? "viewer",
        roleNote: op["x-natfarm-role-note"] ?? null,
        parameters: params.map((p) => ({ name: p.name, in: p.in, required: Boolean(p.required), description: p.description ?? "", type: typeLabel(p.schema) })),
        body: op.requestBody
          ? { required: Boolean(op.requestBody.required), mediaTypes: Object.keys(op.requestBody.content ?? {}), type: typeLabel(json?.schema), example: json?.example ?? null }
          : null,
        responses: Object.entries<Json>(op.responses ?? {}).map(([status, r]) => {
          const content = Object.values<Json>(r.content ?? {})[0];
          return { status, description: r.description ?? "", mediaTypes: Object.keys(r.content ?? {}), type: content ? typeLabel(content.schema) : null, headers: Object.keys(r.headers ?? {}) };
        }),
        curl: curlLine(baseUrl, method, path, {
          ifMatch: ifMatch ? (ifMatch.required ? "required" : "optional") : null,
          body: json?.example ?? (op.requestBody?.required ? {} : undefined),
          mergePatch: Boolean(op.requestBody?.content?.["application/merge-patch+json"]),
          query: requiredQuery.length ? `?${requiredQuery.map((p) => `${p.name}=…`).join("&")}` : "",
        }),
      });
    }
  }
  const tagList: Json[] = doc.tags ?? [];
  const names = [...tagList.map((t) => t.name as string), ...new Set(ops.map((o) => o.tag).filter((t) => !tagList.some((x) => x.name === t)))];
  return {
    tags: names
      .map((name) => ({ name, description: tagList.find((t) => t.name === name)?.description ?? "", operations: ops.filter((o) => o.tag === name) }))
      .filter((t) => t.operations.length > 0),
    schemas: Object.entries<Json>(doc.components?.schemas ?? {}),
  };
}
