import { badRequest, carryMarks, etagOf, farmView, matches, mergePatch, parseFarm, permissionFor, readJsonBody, resultAnswer, type ApiAnswer } from "@/lib/api/farms";
import { answer, asCaller, auditMutation, caller, messageOf, NO_STORE, refuse, staleVersion } from "@/lib/api/route";
import { can } from "@/lib/auth/roles";
import { farmService } from "@/lib/console/farm-service";
import type { Farm } from "@/lib/farms/schema";
import type { FarmRow } from "@/lib/service/farm-rows";

/**
 * GET    /api/v1/farms/{name}   the farm (file format), ETag = its version
 * PUT    /api/v1/farms/{name}   replaces it with the body (a whole farm)
 * PATCH  /api/v1/farms/{name}   a JSON merge patch of its top-level fields
 * DELETE /api/v1/farms/{name}   removes it (rules out of the kernel, then the row)
 * Writes take `If-Match: <ETag>`: stale, 409 and nothing changes; a PUT
 * without one gets 428. Roles: a PUT or PATCH changing only the farm's
 * status and mode and its backends' weight and state needs operator, any
 * other change admin (lib/api/farms.ts permissionFor); DELETE admin.
 */
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ name: string }> };

const noFarm = (name: string): ApiAnswer => ({ status: 404, body: { error: `There is no farm named "${name.slice(0, 64)}".`, issues: [] } });
const stale = staleVersion;
/** A PUT replaces everything: without a version it would silently undo whatever changed since the client's read. */
const versionRequired = (name: string): ApiAnswer => ({
  status: 428,
  body: { error: `a PUT must say which version of farm "${name.slice(0, 64)}" it replaces: send If-Match with its ETag (or * for any); nothing was changed`, issues: [{ path: "If-Match", message: "required for PUT" }] },
});

export async function GET(_req: Request, ctx: Ctx) {
  const c = await caller();
  if (c.refusal) return c.refusal;
  const { name } = await ctx.params;
  const row = await (await farmService()).getFarm(name);
  if (!row) return answer(noFarm(name));
  return Response.json(farmView(row), { headers: { ...NO_STORE, ETag: etagOf(row) } });
}

/** PUT and PATCH: `toNext` turns the stored farm into the new one (validated) or the answer refusing it. */
async function write(req: Request, ctx: Ctx, method: "PUT" | "PATCH", toNext: (row: FarmRow, json: unknown) => Farm | ApiAnswer): Promise<Response> {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "operate", "changing a farm");
  if (no) return no;
  const { name } = await ctx.params;
  const action = method === "PUT" ? "replace farm" : "patch farm";
  const done = async (a: ApiAnswer, extra: { before?: unknown; after?: unknown } = {}) => {
    await auditMutation(c, { action, farm: name, status: a.status, message: messageOf(a), ...extra });
    return answer(a);
  };
  const ifMatch = req.headers.get("if-match");
  if (method === "PUT" && ifMatch === null) return done(versionRequired(name));
  const body = await readJsonBody(req);
  if ("refusal" in body) return done(body.refusal);
  const service = await farmService();
  // Decided inside the service's serialized write, on the farm as stored then.
  let early: ApiAnswer | null = null;
  let needsAdmin = false;
  let before: unknown;
  const r = await asCaller(c, () => service.replaceFarm(
    name,
    (row) => {
      const tag = etagOf(row);
      if (!matches(ifMatch, tag)) return ((early = stale(row.name, tag)), "stale");
      const next = toNext(row, body.json);
      if (!("backends" in next)) return ((early = next as ApiAnswer), "invalid");
      const farm = carryMarks(next as Farm, row);
      if (!can(c.user.role, permissionFor(row, farm))) return ((needsAdmin = true), "admin");
      before = farmView(row);
      return farm;
    },
    method === "PUT" ? "api replace" : "api patch",
  ));
  if (needsAdmin) return (await refuse(c, "administer", "changing a farm's settings or its backends' addresses (more than status, mode, weights and states)"))!;
  if (early) return done(early);
  const a = resultAnswer(r);
  if (r.ok || r.reason === "apply-failed") {
    const row = await service.getFarm(name);
    if (row) {
      a.body.farmConfig = farmView(row);
      a.headers = { ETag: etagOf(row) };
    }
  }
  return done(a, { before, after: a.body.farmConfig });
}

/** The body's name, when it has one, is the URL's: a farm is not renamed through PUT or PATCH. */
function sameName(row: FarmRow, json: unknown): ApiAnswer | null {
  const n = (json as { name?: unknown } | null)?.name;
  if (n !== undefined && n !== row.name) return badRequest("the farm is not valid; nothing was changed", [{ path: "name", message: `the name in the body must be the farm's own ("${row.name}"): farms are not renamed` }]);
  return null;
}

export function PUT(req: Request, ctx: Ctx) {
  return write(req, ctx, "PUT", (row, json) => {
    if (typeof json === "object" && json !== null && !Array.isArray(json) && (json as { name?: unknown }).name === undefined) json = { name: row.name, ...json };
    const p = parseFarm(json);
    if ("refusal" in p) return p.refusal;
    return sameName(row, json) ?? p.farm;
  });
}

export function PATCH(req: Request, ctx: Ctx) {
  return write(req, ctx, "PATCH", (row, json) => {
    const merged = mergePatch(farmView(row) as Record<string, unknown>, json);
    if ("refusal" in merged) return merged.refusal;
    const wrong = sameName(row, json);
    if (wrong) return wrong;
    const p = parseFarm(merged.next);
    if ("refusal" in p) return p.refusal;
    return p.farm;
  });
}

export async function DELETE(req: Request, ctx: Ctx) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "administer", "deleting a farm");
  if (no) return no;
  const { name } = await ctx.params;
  const done = async (a: ApiAnswer, before?: unknown) => {
    await auditMutation(c, { action: "delete farm", farm: name, status: a.status, message: messageOf(a), before });
    return answer(a);
  };
  const service = await farmService();
  const ifMatch = req.headers.get("if-match");
  let early: ApiAnswer | null = null;
  let before: unknown;
  // The version is checked on the farm as stored inside the serialized removal.
  const r = await asCaller(c, () => service.deleteFarm(name, (row) => {
    const tag = etagOf(row);
    if (!matches(ifMatch, tag)) return ((early = stale(row.name, tag)), "stale");
    before = farmView(row);
    return null;
  }));
  if (early) return done(early);
  return done(resultAnswer(r), before);
}
