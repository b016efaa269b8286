import { etagOf, farmView, parseFarm, readJsonBody, resultAnswer } from "@/lib/api/farms";
import { answer, asCaller, auditMutation, caller, messageOf, NO_STORE, refuse } from "@/lib/api/route";
import { farmService } from "@/lib/console/farm-service";

/**
 * GET  /api/v1/farms   every farm in the declarative file format (`{"farms": [...]}`, importable as is) and each one's version
 * POST /api/v1/farms   creates one farm (the file format's farm object; admin); 201 with its ETag
 * See lib/api/farms.ts and /api/v1/openapi.json.
 */
export const dynamic = "force-dynamic";

export async function GET() {
  const c = await caller();
  if (c.refusal) return c.refusal;
  const rows = await (await farmService()).listFarms();
  return Response.json({ farms: rows.map(farmView), versions: Object.fromEntries(rows.map((r) => [r.name, etagOf(r)])) }, { headers: NO_STORE });
}

export async function POST(req: Request) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "administer", "creating a farm");
  if (no) return no;
  const done = async (a: Parameters<typeof answer>[0], farm: string | null, after?: unknown) => {
    await auditMutation(c, { action: "create farm", farm, status: a.status, message: messageOf(a), after });
    return answer(a);
  };
  const body = await readJsonBody(req);
  if ("refusal" in body) return done(body.refusal, null);
  const name = typeof (body.json as { name?: unknown })?.name === "string" ? ((body.json as { name: string }).name).slice(0, 64) : null;
  const parsed = parseFarm(body.json);
  if ("refusal" in parsed) return done(parsed.refusal, name);
  const service = await farmService();
  const r = await asCaller(c, () => service.createFarm(parsed.input));
  const a = resultAnswer(r, 201);
  if (r.ok || r.reason === "apply-failed") {
    const row = await service.getFarm(parsed.farm.name);
    if (row) {
      a.body.farmConfig = farmView(row);
      a.headers = { ETag: etagOf(row), Location: `/api/v1/farms/${encodeURIComponent(row.name)}` };
    }
  }
  return done(a, parsed.farm.name, a.body.farmConfig);
}
