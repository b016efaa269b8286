import { guard } from "@/lib/auth/next";
import { farmService } from "@/lib/console/farm-service";

/** A revision's whole configuration as a farm file (importable with `natfarm import`, restorable from History). */
export const dynamic = "force-dynamic";

export async function GET(_req: Request, ctx: { params: Promise<{ id: string }> }): Promise<Response> {
  const g = await guard("read", "exporting a revision");
  const noStore = { "Cache-Control": "no-store" };
  if (!g.ok) return Response.json({ error: g.message }, { status: g.status, headers: noStore });
  const { id } = await ctx.params;
  if (!/^\d{1,9}$/.test(id) || Number(id) < 1) return Response.json({ error: `not a revision number: "${id.slice(0, 20)}"` }, { status: 400, headers: noStore });
  try {
    const farms = await (await farmService()).configAt(Number(id));
    return new Response(`${JSON.stringify({ farms }, null, 2)}\n`, {
      headers: { ...noStore, "Content-Type": "application/json; charset=utf-8", "Content-Disposition": `attachment; filename="natfarm-revision-${id}.json"` },
    });
  } catch (e) {
    if ((e as Error).name === "RevisionGone") return Response.json({ error: (e as Error).message }, { status: 404, headers: noStore });
    throw e;
  }
}
