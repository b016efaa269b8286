import { degradedFarms } from "@/lib/console/farm-live";

/** Running farms with backends out of the rule set, as [name, backends, up] (the farms list polls this). */
export const dynamic = "force-dynamic";

export async function GET() {
  return Response.json({ degraded: await degradedFarms() }, { headers: { "Cache-Control": "no-store" } });
}
