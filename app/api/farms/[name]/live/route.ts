import { apiGuard } from "@/lib/auth/next";
import { farmLive } from "@/lib/console/farm-live";

/** A farm's live state for its page (polled every 2 s): backend states, health, connection statistics, health events. */
export const dynamic = "force-dynamic";

export async function GET(_req: Request, { params }: { params: Promise<{ name: string }> }) {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  const { name } = await params;
  const live = await farmLive(name);
  if (!live) return Response.json({ error: `There is no farm named "${name}".` }, { status: 404, headers: { "Cache-Control": "no-store" } });
  return Response.json(live, { headers: { "Cache-Control": "no-store" } });
}
