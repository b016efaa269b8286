import { parseBody } from "@/lib/api/input";
import { answer, auditMutation, caller, messageOf, NO_STORE, refuse } from "@/lib/api/route";
import { LabTrafficBodySchema } from "@/lib/api/schemas";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { failureState } from "@/lib/service/errors";
import { LabRunError, runLabTest } from "@/lib/service/lab";

/**
 * POST /api/v1/lab/traffic {"farm", "connections"} (operator): sends test
 * connections from the lab's client to the farm's VIP and counts where they
 * landed, as the Lab page does. Only with the console's target lab.
 */
export const dynamic = "force-dynamic";

export async function POST(req: Request) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "operate", "running lab traffic");
  if (no) return no;
  let farm: string | null = null;
  const done = async (a: Parameters<typeof answer>[0]) => {
    await auditMutation(c, { action: "lab traffic", farm, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const body = await parseBody(req, LabTrafficBodySchema, { what: "lab run" });
  if ("refusal" in body) return done(body.refusal);
  farm = body.data.farm;
  const { target } = consoleEnv();
  if (target.kind !== "lab") return done({ status: 409, body: { error: "The lab exists only when the console's target is lab: nothing was sent.", issues: [] } });
  const service = await farmService();
  const row = await service.getFarm(farm);
  if (!row) return done({ status: 404, body: { error: `There is no farm named "${farm.slice(0, 64)}".`, issues: [{ path: "farm", message: "no such farm" }] } });
  try {
    const result = await runLabTest(target, row, body.data.connections, service.kernel);
    const tally = result.backends.map((b) => `${b.ip}${b.port ? `:${b.port}` : ""} ${b.count}`).join(", ");
    await auditMutation(c, { action: "lab traffic", farm, status: 200, message: `${result.ok} of ${result.connections} connections answered (${tally})` });
    return Response.json(result, { headers: NO_STORE });
  } catch (e) {
    if (e instanceof LabRunError) return done({ status: 409, body: { error: e.message, issues: [] } });
    const f = failureState(e, "run");
    return done({ status: f.agentUnavailable ? 503 : 502, body: { error: f.agentUnavailable ? f.message : `The lab run failed: ${f.message}`, issues: [], ...(f.agentUnavailable ? { agentUnavailable: true } : {}) } });
  }
}
