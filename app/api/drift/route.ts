import { apiGuard } from "@/lib/auth/next";
import { driftOverview } from "@/lib/console/farm-service";

/** Which farms' live rules differ from what natfarm wrote (the farms table polls this). */
export const dynamic = "force-dynamic";

export async function GET() {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  return Response.json(await driftOverview(), { headers: { "Cache-Control": "no-store" } });
}
