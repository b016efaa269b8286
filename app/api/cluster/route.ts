import { apiGuard } from "@/lib/auth/next";
import { consoleCluster } from "@/lib/console/cluster";
import { apiError } from "@/lib/service/errors";

/**
 * The cluster's live status (polled by /cluster): each node's role, VRRP
 * state, addresses, links, conntrackd counters, maintenance and the farm set
 * its kernel holds, and the problems (split brain: critical). While the
 * agent is down: 503 with `agentUnavailable`.
 */
export const dynamic = "force-dynamic";

export async function GET() {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  try {
    return Response.json(await consoleCluster(), { headers: { "Cache-Control": "no-store" } });
  } catch (e) {
    const { status, body } = apiError(e);
    return Response.json(body, { status, headers: { "Cache-Control": "no-store" } });
  }
}
