import { apiGuard } from "@/lib/auth/next";
import { degradedFarms } from "@/lib/console/farm-live";

/** Running farms with backends out of the rule set, as [name, backends, up] (the farms list polls this). */
export const dynamic = "force-dynamic";

export async function GET() {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  return Response.json({ degraded: await degradedFarms() }, { headers: { "Cache-Control": "no-store" } });
}
