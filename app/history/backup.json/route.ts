import { guard } from "@/lib/auth/next";
import { farmService } from "@/lib/console/farm-service";

/**
 * History's "Download backup": the whole configuration as a farm file (the
 * format `natfarm export`, `natfarm config backup` and GET
 * /api/v1/config/backup give, marks included), for any signed-in role (it
 * holds no secret: farms only, as every page shows them).
 */
export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  const g = await guard("read", "downloading a backup");
  if (!g.ok) return Response.json({ error: g.message }, { status: g.status, headers: { "Cache-Control": "no-store" } });
  const backup = await (await farmService()).backup();
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  return new Response(`${JSON.stringify(backup, null, 2)}\n`, {
    headers: { "Cache-Control": "no-store", "Content-Type": "application/json; charset=utf-8", "Content-Disposition": `attachment; filename="natfarm-backup-${stamp}.json"` },
  });
}
