"use server";

import { audited } from "./authz";
import { revalidatePath } from "next/cache";
import { z } from "zod";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { failureState, objectFieldErrors } from "@/lib/service/errors";
import { LabRunError, runLabTest, type LabRunResult } from "@/lib/service/lab";

export interface LabActionState {
  status: "idle" | "ok" | "invalid" | "failed";
  message: string;
  errors: Record<string, string[]>;
  result?: LabRunResult;
  /** A refused form as typed, put back (React resets forms after an action). */
  values?: Record<string, string>;
  agentUnavailable?: boolean;
  stamp: number;
}

const LabRunInput = z.object({
  farm: z.string({ error: "pick a farm" }).trim().min(1, { error: "pick a farm" }),
  connections: z.coerce
    .number({ error: "connections must be a whole number from 1 to 5000" })
    .int({ error: "connections must be a whole number from 1 to 5000" })
    .min(1, { error: "connections must be a whole number from 1 to 5000" })
    .max(5000, { error: "connections must be a whole number from 1 to 5000" }),
});

/** Sends N new connections from the lab's client to a farm's VIP and counts where they landed. */
export async function runLabTestAction(_prev: LabActionState, form: FormData): Promise<LabActionState> {
  // Audited like every other operation (who sent how many connections to which farm, and what answered); the role check is audited's.
  const state = await audited("operate", "run lab traffic", form instanceof FormData ? form : undefined, () => runLabTest_(form), { snapshots: false });
  return state;
}

async function runLabTest_(form: FormData): Promise<LabActionState> {
  const stamp = Date.now();
  const { target } = consoleEnv();
  if (target.kind !== "lab") return { status: "invalid", message: "The lab exists only when the console's target is lab.", errors: {}, stamp };
  if (!(form instanceof FormData)) return { status: "invalid", message: "The request carried no form: nothing was run.", errors: {}, stamp };
  const parsed = LabRunInput.safeParse({ farm: form.get("farm") ?? undefined, connections: form.get("connections") ?? undefined });
  if (!parsed.success) {
    const values = { farm: String(form.get("farm") ?? ""), connections: String(form.get("connections") ?? "") };
    return { status: "invalid", message: "Fix the highlighted fields.", errors: objectFieldErrors(parsed.error), values, stamp };
  }
  const service = await farmService();
  const row = await service.getFarm(parsed.data.farm);
  if (!row) return { status: "invalid", message: `There is no farm named "${parsed.data.farm}".`, errors: { farm: ["no such farm"] }, stamp };
  try {
    const result = await runLabTest(target, row, parsed.data.connections, service.kernel);
    // The run may have added the VIP to the load balancer: the status card shows it.
    revalidatePath("/lab");
    return { status: "ok", message: `${result.ok} of ${result.connections} connections answered.`, errors: {}, result, stamp };
  } catch (e) {
    if (e instanceof LabRunError) return { status: "failed", message: e.message, errors: {}, stamp };
    const failed = failureState(e, "run");
    return { status: "failed", message: failed.agentUnavailable ? failed.message : `The lab run failed: ${failed.message}`, errors: {}, agentUnavailable: failed.agentUnavailable, stamp };
  }
}
