import { resultAnswer } from "@/lib/api/farms";
import { parseBody } from "@/lib/api/input";
import { answer, auditMutation, caller, messageOf, refuse } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";
import { farmService, forgetDrift } from "@/lib/console/farm-service";

/** POST /api/v1/apply (operator): natfarm's rules in the kernel become exactly the database's farms, as the farms page's "Apply all". */
export const dynamic = "force-dynamic";

export async function POST(req: Request) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "operate", "re-applying the farms");
  if (no) return no;
  const done = async (a: Parameters<typeof answer>[0]) => {
    await auditMutation(c, { action: "apply all", farm: null, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const body = await parseBody(req, NoBodySchema, { optional: true });
  if ("refusal" in body) return done(body.refusal);
  const r = await (await farmService()).applyAll("api apply all");
  forgetDrift();
  return done(resultAnswer(r));
}
