"use server";

import { audited } from "./authz";
import type { ActionState } from "./state";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { resetCounters } from "@/lib/service/counters-reset";

/**
 * The live tables' (and a farm page's) "Reset counters": natfarm's own
 * counters on this node's kernel, all of them or one farm's (`farm`).
 * Operator or higher; audited by `audited` (who, from where, the farm field
 * as the scope, and the sentence below, which says what was reset).
 */
export async function resetCountersAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "reset counters", form instanceof FormData ? form : undefined, () => reset(form), { snapshots: false });
}

async function reset(form: FormData): Promise<ActionState> {
  const stamp = Date.now();
  if (!(form instanceof FormData)) return { status: "invalid", message: "The request carried no form: nothing was reset.", errors: {}, stamp };
  const farm = form.get("farm");
  // An empty farm field is the whole of natfarm's counters; anything else must be a farm's name.
  const input = farm === null || farm === "" ? {} : { farm };
  const service = await farmService();
  const r = await resetCounters({ kernel: service.kernel, target: consoleEnv().target.target, farmExists: async (name) => (await service.getFarm(name)) !== null }, input);
  if (r.ok) return { status: "ok", message: r.message, errors: {}, ...(r.scope.farm ? { farm: r.scope.farm } : {}), stamp };
  if (r.reason === "invalid") return { status: "invalid", message: r.message, errors: r.errors, stamp };
  return { status: "failed", message: r.message, errors: {}, ...(r.reason === "unavailable" ? { agentUnavailable: true } : {}), ...(r.reason === "failed" ? { iptables: r.iptables } : {}), stamp };
}
