import { parseBody } from "@/lib/api/input";
import { answer, auditMutation, caller, messageOf, NO_STORE, refuse } from "@/lib/api/route";
import { CountersResetBodySchema } from "@/lib/api/schemas";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { resetCounters } from "@/lib/service/counters-reset";

/**
 * POST /api/v1/tables/reset-counters {"farm"?} (operator): natfarm's own
 * counters to 0 on this console's node, one farm's or all of them, as the
 * Live tables page's button does. Audited with the caller, its address and
 * the scope.
 */
export const dynamic = "force-dynamic";

export async function POST(req: Request) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "operate", "resetting counters");
  if (no) return no;
  let farm: string | null = null;
  const done = async (a: Parameters<typeof answer>[0]) => {
    await auditMutation(c, { action: "reset counters", farm, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const body = await parseBody(req, CountersResetBodySchema, { optional: true, what: "counter reset" });
  if ("refusal" in body) return done(body.refusal);
  farm = body.data.farm ?? null;
  const service = await farmService();
  const r = await resetCounters({ kernel: service.kernel, target: consoleEnv().target.target, farmExists: async (name) => (await service.getFarm(name)) !== null }, body.data);
  if (r.ok) {
    await auditMutation(c, { action: "reset counters", farm, status: 200, message: `${r.message} (${r.target})` });
    return Response.json(r, { headers: NO_STORE });
  }
  switch (r.reason) {
    case "invalid":
      return done({ status: 400, body: { error: r.message, issues: Object.entries(r.errors).flatMap(([path, ms]) => ms.map((message) => ({ path: path === "_form" ? "" : path, message }))) } });
    case "not-found":
      return done({ status: 404, body: { error: r.message, issues: [{ path: "farm", message: "no such farm" }] } });
    case "disabled":
      return done({ status: 409, body: { error: r.message, issues: [] } });
    case "unavailable":
      return done({ status: 503, body: { error: r.message, issues: [], agentUnavailable: true } });
    case "failed":
      return done({ status: 502, body: { error: r.message, issues: [], iptables: r.iptables } });
  }
}
