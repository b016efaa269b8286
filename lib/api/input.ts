import type { z } from "zod";
import { formatMark, parseMark } from "../farms/marks.ts";
import type { FarmRow } from "../service/farm-rows.ts";
import { badRequest, farmView, readJsonBody, zodIssues, type ApiAnswer } from "./farms.ts";
import { BackendCreateSchema, BackendPatchSchema } from "./schemas.ts";

/**
 * What the REST API's handlers take from a request besides the farm
 * itself: query strings, small bodies (parsed with the shared zod schemas,
 * lib/api/schemas.ts), a backend's mark in the path. Each gives the value,
 * or the 400 naming the field, before anything is read from the database.
 */

/** The query string through a strict zod schema: a repeated or unknown parameter is refused like a bad value. */
export function parseQuery<S extends z.ZodType>(url: string, schema: S): { data: z.output<S> } | { refusal: ApiAnswer } {
  const params = new URL(url, "http://x").searchParams;
  const raw: Record<string, string> = {};
  const repeated: string[] = [];
  for (const [k, v] of params) {
    if (k in raw) repeated.push(k);
    raw[k] = v;
  }
  if (repeated.length) return { refusal: badRequest("a query parameter is given more than once; nothing was read", [...new Set(repeated)].map((k) => ({ path: k, message: `${k} is given more than once` }))) };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    return { refusal: badRequest("the query is not valid", zodIssues(parsed.error).map((i) => ({ ...i, message: i.message.replace(/^unknown field/, "unknown parameter") }))) };
  }
  return { data: parsed.data };
}

/** A JSON body through a zod schema; an optional body may be absent (or `{}`). */
export async function parseBody<S extends z.ZodType>(req: Request, schema: S, o: { optional?: boolean; what?: string } = {}): Promise<{ data: z.output<S>; json: unknown } | { refusal: ApiAnswer }> {
  const body = await readJsonBody(req, undefined, { optional: o.optional });
  if ("refusal" in body) return body;
  const json = body.json === undefined ? {} : body.json;
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { refusal: badRequest(`the body must be a JSON object${o.what ? ` (${o.what})` : ""}`, [{ path: "", message: "must be an object" }]) };
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { refusal: badRequest(`the body is not valid${o.what ? ` ${o.what}` : ""}; nothing was changed`, zodIssues(parsed.error)) };
  return { data: parsed.data, json };
}

/** A backend's mark from the path ("0x20c" or 524), or the 400. */
export function parseMarkParam(value: string): { mark: number } | { refusal: ApiAnswer } {
  const mark = parseMark(decodeURIComponent(value));
  if (mark === null) return { refusal: badRequest("the backend is named by its mark", [{ path: "mark", message: `mark must be a backend's mark such as "0x20c" or 524, not ${JSON.stringify(value.slice(0, 40))}` }]) };
  return { mark };
}

/** A new backend: the file format's backend without a mark; a mark in the body is refused by name (natfarm allocates it). */
export function parseNewBackend(json: unknown): { value: z.output<typeof BackendCreateSchema> } | { refusal: ApiAnswer } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { refusal: badRequest("the body must be a backend object", [{ path: "", message: "must be an object" }]) };
  if (typeof json === "object" && json !== null && !Array.isArray(json) && "mark" in json) {
    return { refusal: badRequest("the backend is not valid; nothing was changed", [{ path: "mark", message: "natfarm allocates a new backend's mark: leave mark out" }]) };
  }
  const parsed = BackendCreateSchema.safeParse(json);
  if (!parsed.success) return { refusal: badRequest("the backend is not valid; nothing was changed", zodIssues(parsed.error)) };
  return { value: parsed.data };
}

/** A backend PATCH: only the fields given (an absent port is not "no port"), at least one. */
export function parseBackendPatch(json: unknown): { value: Partial<z.output<typeof BackendPatchSchema>> } | { refusal: ApiAnswer } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { refusal: badRequest("the body must be a JSON object of the backend's fields to change", [{ path: "", message: "must be an object" }]) };
  const parsed = BackendPatchSchema.safeParse(json);
  if (!parsed.success) return { refusal: badRequest("the change is not valid; nothing was changed", zodIssues(parsed.error)) };
  const given = new Set(Object.keys(json as object));
  const patch = Object.fromEntries(Object.entries(parsed.data).filter(([k]) => given.has(k)));
  if (Object.keys(patch).length === 0) return { refusal: badRequest("nothing to change: give at least one of ip, port, weight, state, priority", [{ path: "", message: "give at least one field" }]) };
  return { value: patch };
}

/** The farm's backend with this mark, as the file format writes it (null: none). */
export function backendView(row: FarmRow, mark: number) {
  return farmView(row).backends.find((b) => b.mark !== undefined && parseMark(b.mark) === mark) ?? null;
}

export const noBackend = (farm: string, mark: number): ApiAnswer => ({ status: 404, body: { error: `Farm ${farm} has no backend with mark ${formatMark(mark)}.`, issues: [] } });
