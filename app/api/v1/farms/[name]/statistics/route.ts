import { read, json } from "@/lib/api/route";
import { farmStatistics } from "@/lib/api/statistics";

/** GET /api/v1/farms/{name}/statistics: per backend, its share of new connections and conntrack's counts, as the farm page shows. */
export const dynamic = "force-dynamic";

export function GET(_req: Request, ctx: { params: Promise<{ name: string }> }) {
  return read(async () => {
    const { name } = await ctx.params;
    const s = await farmStatistics(name);
    if (!s) return { status: 404, body: { error: `There is no farm named "${name.slice(0, 64)}".`, issues: [] } };
    return json(s);
  });
}
