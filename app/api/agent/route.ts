import { apiGuard } from "@/lib/auth/next";
import { agentReach } from "@/lib/console/farm-service";

/** Whether the natfarm agent answers (the header's banner polls this): one round trip, no program run. */
export const dynamic = "force-dynamic";

export async function GET() {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  return Response.json(await agentReach(), { headers: { "Cache-Control": "no-store" } });
}
