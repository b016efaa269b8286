import { createHash } from "node:crypto";
import type { z } from "zod";
import { toFileFarm } from "../farms/file.ts";
import { FarmSchema, type Farm, type FarmInput } from "../farms/schema.ts";
import type { Permission } from "../auth/roles.ts";
import { rowToResolved, type FarmRow } from "../service/farm-rows.ts";
import type { FieldErrors, MutationResult } from "../service/result.ts";

/**
 * The REST API's farms (/api/v1/farms), without Next.js: the farm as the
 * declarative file writes it, its version, the body's validation with the
 * file format's own schema (FarmSchema), which role a change needs, and the
 * service's results as HTTP answers. The route handlers (app/api/v1/**)
 * only add the login, the audit entry and the service call.
 */

/** Bodies larger than this are refused (413) before they are parsed. */
export const BODY_LIMIT = 1024 * 1024;

export type ApiIssue = { path: string; message: string };
export type ApiAnswer = { status: number; body: Record<string, unknown>; headers?: Record<string, string> };

/** The farm in the file format (marks in hex): what GET returns and PUT takes. */
export function farmView(row: FarmRow) {
  return toFileFarm(rowToResolved(row) as Farm);
}

/** The farm's version: a hash of its stored JSON, as a strong ETag. Any change to anything stored changes it. */
export function etagOf(row: FarmRow): string {
  return `"${createHash("sha256").update(JSON.stringify(farmView(row))).digest("base64url").slice(0, 22)}"`;
}

/** If-Match: absent (no precondition), `*`, or a list of ETags (weak ones compare by value as well). */
export function matches(ifMatch: string | null, etag: string): boolean {
  if (ifMatch === null) return true;
  const tags = ifMatch.split(",").map((t) => t.trim().replace(/^W\//, ""));
  return tags.includes("*") || tags.includes(etag);
}

/** The zod issues as `{path: "backends.1.weight", message}` (an unknown field: its own path). */
export function zodIssues(error: z.ZodError): ApiIssue[] {
  const out: ApiIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) out.push({ path: [...base, k].join("."), message: `unknown field "${k}"` });
    } else out.push({ path: base.join("."), message: issue.message });
  }
  return out;
}

export function fieldIssues(errors: FieldErrors): ApiIssue[] {
  return Object.entries(errors).flatMap(([path, messages]) => messages.map((message) => ({ path: path === "_form" ? "" : path, message })));
}

export const badRequest = (error: string, issues: ApiIssue[]): ApiAnswer => ({ status: 400, body: { error, issues } });

/** A JSON body of at most BODY_LIMIT bytes, or the answer refusing it (400, 413, 415). */
export async function readJsonBody(req: Request, limit = BODY_LIMIT, o: { optional?: boolean } = {}): Promise<{ json: unknown } | { refusal: ApiAnswer }> {
  const type = req.headers.get("content-type");
  if (type && !/^application\/(merge-patch\+)?json\s*(;|$)/i.test(type)) {
    return { refusal: { status: 415, body: { error: `the body must be JSON (Content-Type: application/json), not ${type.slice(0, 80)}`, issues: [] } } };
  }
  const tooLarge: ApiAnswer = { status: 413, body: { error: `the body is larger than ${limit} bytes; nothing was changed`, issues: [] } };
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) return { refusal: tooLarge };
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return { refusal: tooLarge };
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return o.optional ? { json: undefined } : { refusal: badRequest("the body is empty: send it as JSON", [{ path: "", message: "a JSON body is required" }]) };
  try {
    return { json: JSON.parse(text) };
  } catch (e) {
    return { refusal: badRequest(`the body is not valid JSON: ${(e as Error).message}`, []) };
  }
}

/** The body validated as one farm of the file format; the farm's input for the service, or the 400. */
export function parseFarm(json: unknown): { farm: Farm; input: FarmInput } | { refusal: ApiAnswer } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { refusal: badRequest("the body must be a farm object", [{ path: "", message: "must be an object" }]) };
  const parsed = FarmSchema.safeParse(json);
  if (!parsed.success) return { refusal: badRequest("the farm is not valid; nothing was changed", zodIssues(parsed.error)) };
  return { farm: parsed.data, input: json as FarmInput };
}

/**
 * PATCH: a JSON merge patch (RFC 7386) at the farm's top level: a field
 * given replaces the stored one (`backends` as a whole list, `healthcheck`
 * as a whole object), `null` removes an optional one (`healthcheck`), a
 * field left out stays.
 */
export function mergePatch(current: Record<string, unknown>, patch: unknown): { next: Record<string, unknown> } | { refusal: ApiAnswer } {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return { refusal: badRequest("a PATCH body must be an object of the fields to change", [{ path: "", message: "must be an object" }]) };
  const next: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return { next };
}

/** Backends given without a mark keep the mark of the stored backend on the same address and port (so a PUT of GET's answer without marks moves no connection). */
export function carryMarks(next: Farm, current: FarmRow): Farm {
  const marks = new Map(current.backends.map((b) => [`${b.ip}|${b.port ?? "*"}`, b.mark]));
  const taken = new Set(next.backends.map((b) => b.mark).filter((m) => m !== undefined));
  return {
    ...next,
    backends: next.backends.map((b) => {
      if (b.mark !== undefined) return b;
      const m = marks.get(`${b.ip}|${b.port ?? "*"}`);
      if (m === undefined || taken.has(m)) return b;
      taken.add(m);
      return { ...b, mark: m };
    }),
  };
}

/**
 * Which role a PUT or PATCH needs. The operator's changes are the issue's
 * "changes backends (weight, drain, cut, back in service), starts and stops
 * farms, toggles NAT/DNAT": a change that touches nothing but the farm's
 * `status` and `mode` and its backends' `weight` and `state` (the same
 * backends, same addresses, ports, priorities and marks, in the same order)
 * needs `operate`; anything else (the VIP, ports, protocol, scheduler,
 * persistence, health check, a backend added, removed, moved or
 * re-addressed) is editing the farm and needs `administer`, as creating and
 * deleting do. (The backends' own endpoints let an operator add, edit and
 * remove backends one at a time, as the console's backend forms do.) A
 * change to nothing needs `operate` (it changes nothing; a viewer is still
 * refused).
 */
export function permissionFor(current: FarmRow, next: Farm): Permission {
  const cur = rowToResolved(current);
  const shape = (f: { backends: { ip: string; port: number | null; priority: number; mark?: number }[] } & Record<string, unknown>) => {
    const { status: _s, mode: _m, backends, allowLocalVip: _a, ...rest } = f;
    return JSON.stringify({ ...rest, healthcheck: rest.healthcheck ?? null, backends: backends.map((b) => [b.ip, b.port, b.priority, b.mark ?? null]) });
  };
  const nextShape = shape({ ...next, name: cur.name, backends: next.backends.map((b, i) => ({ ...b, mark: b.mark ?? cur.backends[i]?.mark })) } as never);
  return shape(cur as never) === nextShape ? "operate" : "administer";
}

/** A service result as the API's answer. */
export function resultAnswer(r: MutationResult, okStatus = 200): ApiAnswer {
  if (r.ok) return { status: okStatus, body: { farm: r.farm, outcome: r.outcome, message: r.message, ...(r.warnings?.length ? { warnings: r.warnings } : {}) } };
  switch (r.reason) {
    case "invalid":
      return { status: 400, body: { error: r.message, issues: fieldIssues(r.errors) } };
    case "not-found":
      return { status: 404, body: { error: r.message, issues: [] } };
    case "apply-failed":
      // Saved, but the kernel refused the rules: the farm is "failed" until fixed or re-applied.
      return { status: 502, body: { error: r.message, farm: r.farm, iptables: r.iptables, issues: [] } };
    case "unavailable":
      return { status: 503, body: { error: r.message, saved: r.saved, agentUnavailable: true, issues: [] } };
  }
}
