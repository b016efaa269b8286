import { parseQuery } from "@/lib/api/input";
import { json, read } from "@/lib/api/route";
import { HealthEventsQuerySchema } from "@/lib/api/schemas";
import { toEvent } from "@/lib/console/farm-live";
import { farmService } from "@/lib/console/farm-service";

/** GET /api/v1/health-events?farm=&limit=: the health checker's state changes, newest first. */
export const dynamic = "force-dynamic";

export function GET(req: Request) {
  return read(async () => {
    const q = parseQuery(req.url, HealthEventsQuerySchema);
    if ("refusal" in q) return q.refusal;
    const events = await (await farmService()).healthEvents({ farm: q.data.farm || undefined, limit: q.data.limit });
    return json({ events: events.map(toEvent) });
  });
}
