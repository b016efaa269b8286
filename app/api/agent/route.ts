import { agentReach } from "@/lib/console/farm-service";

/** Whether the natfarm agent answers (the header's banner polls this): one round trip, no program run. */
export const dynamic = "force-dynamic";

export async function GET() {
  return Response.json(await agentReach(), { headers: { "Cache-Control": "no-store" } });
}
