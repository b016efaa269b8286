import { apiGuard } from "@/lib/auth/next";
import { farmDetail } from "@/lib/console/farm-service";

/**
 * Whether the kernel holds the farm's rules as natfarm wrote them (its page
 * polls this): read through the agent, apart from the page itself, so that
 * neither the page nor an action's re-render of it waits for the kernel.
 */
export const dynamic = "force-dynamic";

export async function GET(_req: Request, { params }: { params: Promise<{ name: string }> }) {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  const { name } = await params;
  const headers = { "Cache-Control": "no-store" };
  const d = await farmDetail(name);
  if (!d) return Response.json({ error: `There is no farm named "${name}".` }, { status: 404, headers });
  return Response.json({ drift: d.drift, liveError: d.liveError, agentUnavailable: d.agentUnavailable ?? false, version: `${d.row.updatedAt.toISOString()}|${d.row.applyState}` }, { headers });
}
