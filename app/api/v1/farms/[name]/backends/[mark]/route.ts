import { etagOf } from "@/lib/api/farms";
import { backendView, noBackend, parseBackendPatch, parseMarkParam } from "@/lib/api/input";
import { farmAction, json, read } from "@/lib/api/route";
import { farmService } from "@/lib/console/farm-service";

/**
 * GET    /api/v1/farms/{name}/backends/{mark}   one backend (file format), ETag = the farm's version
 * PATCH  /api/v1/farms/{name}/backends/{mark}   changes the fields given (operator)
 * DELETE /api/v1/farms/{name}/backends/{mark}   removes it from the farm (operator)
 * A backend is named by its mark: unique across all farms and fixed for its life.
 */
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ name: string; mark: string }> };

export function GET(_req: Request, ctx: Ctx) {
  return read(async () => {
    const { name, mark: raw } = await ctx.params;
    const m = parseMarkParam(raw);
    if ("refusal" in m) return m.refusal;
    const row = await (await farmService()).getFarm(name);
    if (!row) return { status: 404, body: { error: `There is no farm named "${name.slice(0, 64)}".`, issues: [] } };
    const b = backendView(row, m.mark);
    if (!b) return noBackend(row.name, m.mark);
    return json(b, { ETag: etagOf(row) });
  });
}

export function PATCH(req: Request, ctx: Ctx) {
  return farmAction(req, ctx, {
    action: "edit backend",
    permission: "operate",
    what: "changing a backend",
    backend: true,
    parse: parseBackendPatch,
    run: (s, name, { body, mark }, pre) => s.updateBackend(name, mark, body, pre),
  });
}

export function DELETE(req: Request, ctx: Ctx) {
  return farmAction(req, ctx, {
    action: "remove backend",
    permission: "operate",
    what: "removing a backend",
    backend: true,
    run: (s, name, { mark }, pre) => s.removeBackend(name, mark, pre),
  });
}
