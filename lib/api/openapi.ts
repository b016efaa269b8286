import { z } from "zod";
import { FARM_NAME_MAX, FARM_NAME_PATTERN } from "../farms/schema.ts";
import { BODY_LIMIT } from "./farms.ts";
import { OPERATIONS, PARAM_NOTES, TAGS, type Operation } from "./operations.ts";
import { COMPONENTS, type ComponentName } from "./schemas.ts";

/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and
 * rendered by the console's reference page (/api-docs). Operations come
 * from lib/api/operations.ts; every schema is generated from the zod
 * schemas the handlers parse with (lib/api/schemas.ts, the farm file
 * format's FarmSchema and BackendSchema) by z.toJSONSchema, as JSON Schema
 * 2020-12, OpenAPI 3.1's dialect. Request schemas are the input side
 * (defaults optional; marks "0x20c" or a number). Rules zod checks in code
 * (IPv4 syntax, the ports' grammar, duplicates, overlaps with other farms)
 * are not expressible there and stay server-side: their failures come back
 * as 400 with field paths.
 */
export const ROLE_EXTENSION = "x-natfarm-role";
export const ROLE_NOTE_EXTENSION = "x-natfarm-role-note";

type Json = Record<string, unknown>;

const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

function strip(schema: Json): Json {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { io: "input", unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
  return Object.fromEntries(Object.entries(out.schemas).map(([k, v]) => [k, strip(v)]));
}

/** A query schema's fields as OpenAPI parameters (each field's own generated schema). */
function queryParameters(query: z.ZodObject): Json[] {
  const s = z.toJSONSchema(query, { io: "input", unrepresentable: "any" }) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return { name, in: "query", required: (s.required ?? []).includes(name), description: (description as string | undefined) ?? PARAM_NOTES[name], schema: rest };
  });
}

const MARK_PARAM = {
  name: "mark",
  in: "path",
  required: true,
  description: 'the backend\'s mark: hex ("0x20c") or decimal (524)',
  schema: { type: "string", pattern: "^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$" },
};
const REVISION_PARAM = { name: "id", in: "path", required: true, description: "the revision's number", schema: { type: "string", pattern: "^[0-9]{1,10}$" } };
const NAME_PARAM = { name: "name", in: "path", required: true, description: "the farm's name", schema: { type: "string", pattern: FARM_NAME_PATTERN.source, maxLength: FARM_NAME_MAX } };
const ETAG = { ETag: { description: "the farm's version: send it back in If-Match", schema: { type: "string" } } };

function errorAnswers(op: Operation): Record<string, Json> {
  const e = (description: string, schema: ComponentName = "Error") => ({ description, content: { "application/json": { schema: ref(schema) } } });
  const out: Record<string, Json> = {};
  if (op.body || op.query || op.backend || op.revision) {
    out["400"] = e(op.body ? "the body is not valid (every field at fault in issues, with its path), or not JSON; nothing was changed" : "a parameter is not valid (issues name it); nothing was changed");
  }
  out["401"] = e("not signed in, or the API token is unknown, expired or revoked", "Unauthorized");
  if (op.role !== "viewer") out["403"] = e(`the caller's role is below ${op.role}${op.roleNote ? ` (${op.roleNote})` : ""}; nothing was changed`);
  if (op.farm || op.farmInBody) out["404"] = e(op.backend ? "no such farm, or the farm has no backend with that mark" : "no such farm");
  if (op.revision) out["404"] = e("no such revision (or no longer kept: the history keeps the newest NATFARM_HISTORY_KEEP)");
  if (op.ifMatch || op.conflict) {
    out["409"] = e([op.ifMatch ? "If-Match is stale: the farm changed since that version (its current one in ETag); nothing was changed" : "", op.conflict ?? ""].filter(Boolean).join("; or "));
  }
  if (op.body) {
    out["413"] = e(`the body is larger than ${(op.bodyLimit ?? BODY_LIMIT) / 1024 / 1024} MiB; nothing was changed`);
    out["415"] = e("the body is not JSON (Content-Type); nothing was changed");
  }
  if (op.ifMatch === "required") out["428"] = e("If-Match is missing: say which version this replaces (or `*`); nothing was changed");
  if (op.kernel) {
    out["502"] = e("the kernel refused the rules (iptables' message in iptables); a saved change is then marked failed");
    out["503"] = e("the natfarm agent is not running: nothing could be applied (saved says whether the database took it)");
  }
  return out;
}

function operationObject(op: Operation): Json {
  const parameters: Json[] = [];
  if (op.farm) parameters.push(NAME_PARAM);
  if (op.backend) parameters.push(MARK_PARAM);
  if (op.revision) parameters.push(REVISION_PARAM);
  if (op.query) parameters.push(...queryParameters(op.query));
  if (op.ifMatch) {
    parameters.push({
      name: "If-Match",
      in: "header",
      required: op.ifMatch === "required",
      description: op.ifMatch === "required" ? "the farm's ETag last read (`*`: any version); stale: 409, missing: 428" : "the farm's ETag last read; stale: 409 and nothing changes",
      schema: { type: "string" },
    });
  }
  const okContent: Json = { "application/json": { schema: ref(op.ok.schema) } };
  if (op.ok.jsonl) okContent["application/x-ndjson"] = { schema: ref("AuditRecord") };
  const headers: Json = { ...(op.ok.etag ? ETAG : {}), ...(op.ok.location ? { Location: { description: "the new resource", schema: { type: "string" } } } : {}) };
  const body = op.body
    ? {
        requestBody: {
          required: op.body.required,
          content: {
            ...(op.body.mergePatch ? { "application/merge-patch+json": { schema: ref(op.body.schema) } } : {}),
            "application/json": { schema: ref(op.body.schema), ...(op.example !== undefined ? { example: op.example } : {}) },
          },
        },
      }
    : {};
  return {
    operationId: op.id,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, `Role: ${op.role}${op.roleNote ? ` (${op.roleNote})` : op.role === "admin" ? "" : " or higher"}.`].filter(Boolean).join("\n\n"),
    [ROLE_EXTENSION]: op.role,
    ...(op.roleNote ? { [ROLE_NOTE_EXTENSION]: op.roleNote } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...body,
    responses: {
      [String(op.ok.status)]: { description: op.ok.description, ...(Object.keys(headers).length ? { headers } : {}), content: okContent },
      ...errorAnswers(op),
    },
  };
}

let cached: Json | null = null;

export function openApiDocument(): Json {
  if (cached) return cached;
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  cached = {
    openapi: "3.1.0",
    info: {
      title: "natfarm REST API",
      version: "1",
      description: [
        "Layer-4 NAT load-balancing farms on Linux netfilter: what the console does, for automation.",
        "Authentication: `Authorization: Bearer <API token>` (`natfarm token create --user NAME`) or the console's session cookie (a write with the cookie also needs the console's `Origin`).",
        "Roles: viewer reads (farms, backends, live tables, statistics, drift, health events); operator also maintains backends (add, edit, weight, drain, cut, back in service), starts and stops farms, switches NAT/DNAT, re-applies and runs lab traffic; admin also creates and deletes farms, changes their settings, and reads the audit log.",
        "Versions: every farm has one (ETag). A write with If-Match that is stale gets 409 and changes nothing; PUT requires If-Match (428 without).",
        'Errors: JSON `{"error": "...", "issues": [{"path": "backends.1.weight", "message": "..."}]}`; unknown fields are refused; bodies over 1 MiB get 413, non-JSON 415. Every change and every refusal is in the audit log.',
      ].join("\n\n"),
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: "/" }],
    security: [{ bearer: [] }, { session: [] }],
    tags: TAGS,
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "an API token, nft_… (natfarm token create); its role is at most its user's" },
        session: { type: "apiKey", in: "cookie", name: "__Host-natfarm_session", description: "the console's login (writes also need the console's Origin)" },
      },
      schemas: componentSchemas(),
    },
  };
  return cached;
}
