import { z } from "zod";
import type { CountersResetResult } from "../applier/counters-reset.ts";
import { fieldErrors } from "../farms/errors.ts";
import { FARM_NAME_MAX, FARM_NAME_PATTERN } from "../farms/schema.ts";
import type { KernelPort } from "../kernel/index.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { agentDown, kernelFailure } from "./errors.ts";
import type { FieldErrors } from "./result.ts";
import { forgetTablesReads } from "./tables-read.ts";

/**
 * "Reset counters" of the live tables, for the console, the REST API and
 * the CLI alike: natfarm's own counters on this node's kernel (the console's
 * target; in a cluster every node has its own counters and each console
 * resets its own), all of them or one farm's. What is never reset: other
 * software's rules and chains, and natfarm's jumps from the built-in chains
 * (zeroing a built-in chain would zero everyone's rules in it).
 *
 * The traffic graph's totals survive it: the sampler takes a counter lower
 * than last time as restarted and adds what it holds since
 * (traffic-counters.ts), so a reset is neither negative nor a jump.
 */
export const CountersResetInputSchema = z
  .strictObject({
    farm: z
      .string({ error: "farm must be a farm's name" })
      .max(FARM_NAME_MAX, { error: `a farm's name has at most ${FARM_NAME_MAX} characters` })
      .regex(FARM_NAME_PATTERN, { error: "farm names hold only letters, digits, _ and -" })
      .optional(),
  })
  .describe("Which counters: one farm's (`farm`), or, without it, all of natfarm's.");
export type CountersResetInput = z.output<typeof CountersResetInputSchema>;

/** What is left alone, in the words every boundary uses (the dialog, the toast, the API's description). */
export const RESET_KEEPS = "Other software's rules and chains keep their counters, and so do natfarm's jumps from the built-in chains (PREROUTING, POSTROUTING): zeroing those would zero other software's rules too.";

export type CountersResetOutcome =
  | ({ ok: true; message: string; target: string } & CountersResetResult)
  | { ok: false; reason: "invalid"; message: string; errors: FieldErrors }
  | { ok: false; reason: "not-found"; message: string }
  | { ok: false; reason: "disabled"; message: string }
  | { ok: false; reason: "unavailable"; message: string }
  | { ok: false; reason: "failed"; message: string; iptables: string };

export interface CountersResetDeps {
  kernel: KernelPort;
  /** This node's kernel; null when applying is disabled (target none). */
  target: Target | null;
  /** Whether a farm of that name exists (the console's database); absent: any name the kernel holds rules of. */
  farmExists?: (name: string) => Promise<boolean>;
}

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

export function describeReset(r: CountersResetResult): string {
  const whose = r.scope.farm ? `farm ${r.scope.farm}'s` : "natfarm's";
  if (r.counters === 0) return r.scope.farm ? `Farm ${r.scope.farm} has no counters in the kernel (stopped, or not applied): nothing was reset.` : "natfarm has no rules in the kernel: nothing was reset.";
  const what = r.engine === "nftables" ? count(r.counters, "backend counter") : `${count(r.counters, "rule")}${r.chains ? ` (${count(r.chains, "chain")} whole)` : ""}`;
  return `Reset ${whose} counters to 0: ${what}, which had counted ${count(r.packets, "packet")} and ${count(r.bytes, "byte")}. Other software's counters and natfarm's jumps in the built-in chains were left as they were.`;
}

export async function resetCounters(deps: CountersResetDeps, input: unknown): Promise<CountersResetOutcome> {
  const parsed = CountersResetInputSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const errors = fieldErrors(parsed.error);
    return { ok: false, reason: "invalid", message: `Nothing was reset: ${Object.entries(errors).map(([k, m]) => `${k === "_form" ? "" : `${k}: `}${m.join(", ")}`).join("; ")}`, errors };
  }
  if (!deps.target) return { ok: false, reason: "disabled", message: "Applying is disabled (target none): there are no live counters to reset." };
  const farm = parsed.data.farm;
  if (farm && deps.farmExists && !(await deps.farmExists(farm))) return { ok: false, reason: "not-found", message: `There is no farm named "${farm}": nothing was reset.` };
  try {
    const r = await deps.kernel.resetCounters(deps.target, { farm });
    // The page's next read must show the zeros, not a read taken a moment before the reset.
    forgetTablesReads();
    return { ok: true, message: describeReset(r), target: formatTarget(deps.target), ...r };
  } catch (e) {
    const f = kernelFailure(e);
    if (f.kind === "unreachable") return { ok: false, reason: "unavailable", message: agentDown("no counter was reset") };
    return { ok: false, reason: "failed", message: f.message, iptables: f.kind === "failed" ? f.iptables : f.message };
  }
}
