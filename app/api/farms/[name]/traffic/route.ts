import { z } from "zod";
import { apiGuard } from "@/lib/auth/next";
import { consoleDb } from "@/lib/console/db";
import { farmService } from "@/lib/console/farm-service";
import { farmTraffic } from "@/lib/service/traffic-sampler";

/**
 * A farm's traffic graph (its page polls it every 10 s): new connections and
 * bytes per second from the health checker's samples of natfarm's counters,
 * `range=1h` (10 s steps, the default) or `range=24h` (minute steps).
 */
export const dynamic = "force-dynamic";

const Query = z.strictObject({ range: z.enum(["1h", "24h"], { error: 'range must be "1h" or "24h"' }).default("1h") });

export async function GET(req: Request, { params }: { params: Promise<{ name: string }> }) {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  const headers = { "Cache-Control": "no-store" };
  const q = Query.safeParse(Object.fromEntries(new URL(req.url).searchParams));
  if (!q.success) return Response.json({ error: z.prettifyError(q.error) }, { status: 400, headers });
  const { name } = await params;
  if (!(await (await farmService()).getFarm(name))) return Response.json({ error: `There is no farm named "${name}".` }, { status: 404, headers });
  return Response.json(await farmTraffic(await consoleDb(), name, q.data.range), { headers });
}
