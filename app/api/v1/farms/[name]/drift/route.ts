import { read, json } from "@/lib/api/route";
import { farmDetail } from "@/lib/console/farm-service";

/** GET /api/v1/farms/{name}/drift: the farm's rules compared with the kernel's (missing and unexpected lines). */
export const dynamic = "force-dynamic";

export function GET(_req: Request, ctx: { params: Promise<{ name: string }> }) {
  return read(async () => {
    const { name } = await ctx.params;
    const d = await farmDetail(name);
    if (!d) return { status: 404, body: { error: `There is no farm named "${name.slice(0, 64)}".`, issues: [] } };
    return json({ farm: d.row.name, drift: d.drift, liveError: d.liveError, ...(d.agentUnavailable !== undefined ? { agentUnavailable: d.agentUnavailable } : {}) });
  });
}
