import { apiGuard } from "@/lib/auth/next";
import { farmService } from "@/lib/console/farm-service";
import { toEvent } from "@/lib/console/farm-live";

/** The health checker's latest state changes, newest first (the History page polls this). */
export const dynamic = "force-dynamic";

export async function GET(req: Request) {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  const params = new URL(req.url).searchParams;
  const limit = Math.min(500, Math.max(1, Number(params.get("limit")) || 200));
  const farm = params.get("farm")?.trim() || undefined;
  const events = await (await farmService()).healthEvents({ farm, limit });
  return Response.json({ events: events.map(toEvent) }, { headers: { "Cache-Control": "no-store" } });
}
