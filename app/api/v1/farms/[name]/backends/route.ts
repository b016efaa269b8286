import { etagOf, farmView } from "@/lib/api/farms";
import { parseNewBackend } from "@/lib/api/input";
import { farmAction, json, read } from "@/lib/api/route";
import { farmService } from "@/lib/console/farm-service";
import { formatMark } from "@/lib/farms/marks";

/**
 * GET  /api/v1/farms/{name}/backends   the farm's backends (file format), ETag = the farm's version
 * POST /api/v1/farms/{name}/backends   adds one (operator; natfarm allocates its mark): 201, Location
 */
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ name: string }> };

export function GET(_req: Request, ctx: Ctx) {
  return read(async () => {
    const { name } = await ctx.params;
    const row = await (await farmService()).getFarm(name);
    if (!row) return { status: 404, body: { error: `There is no farm named "${name.slice(0, 64)}".`, issues: [] } };
    return json({ farm: row.name, backends: farmView(row).backends }, { ETag: etagOf(row) });
  });
}

export function POST(req: Request, ctx: Ctx) {
  return farmAction(req, ctx, {
    action: "add backend",
    permission: "operate",
    what: "adding a backend",
    parse: parseNewBackend,
    okStatus: 201,
    run: (s, name, { body }, pre) => s.addBackend(name, body, pre),
    extra: (row, { body }) => {
      const i = row.backends.findIndex((b) => b.ip === body.ip && b.port === (body.port ?? null));
      const added = farmView(row).backends[i]!;
      return { body: { backend: added }, headers: { Location: `/api/v1/farms/${encodeURIComponent(row.name)}/backends/${formatMark(row.backends[i]!.mark)}` } };
    },
  });
}
