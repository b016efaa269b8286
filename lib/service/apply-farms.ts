import { existsSync, readFileSync } from "node:fs";
import { farmWarnings } from "../farms/warnings.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { KernelPort } from "../kernel/index.ts";
import { farmsSharingChains } from "../netfilter/layout.ts";
import type { Target } from "../privileged/target.ts";
import { changeSummary, logApply, markAllFailed, markApplied, markFailed, markShardInDoubt } from "./apply-log.ts";
import { kernelFailure, refused, unavailable } from "./errors.ts";
import { rowToInput } from "./farm-rows.ts";
import type { FarmSetCache } from "./farm-set-cache.ts";
import type { MutationResult } from "./result.ts";
import { deleteFarms, loadFarms } from "./store.ts";

/**
 * The database's farms into the kernel, through the kernel port, and the
 * outcome recorded (apply log, applyState). The database holds the desired
 * state; applyState says whether the kernel holds it too, so that the two
 * never disagree without the console saying so.
 */
export interface ApplyContext {
  db: PrismaClient;
  kernel: KernelPort;
  /** null: applying is disabled (target "none"); changes stay pending. */
  target: Target | null;
  targetLabel: string;
  farmSet: FarmSetCache;
  faultFile?: string | null;
  prepareTarget?: () => Promise<void>;
  /** Whether changes are staged (./staging.ts): then writes reach the database only, until Apply changes. */
  staged?: () => Promise<boolean>;
}

/** Test hook (NATFARM_FAULT_FILE): when the file exists, its content is the table to break. */
function faultOf(file: string | null | undefined): "nat" | "mangle" | undefined {
  if (!file || !existsSync(file)) return undefined;
  const table = readFileSync(file, "utf8").trim();
  return table === "nat" || table === "mangle" ? table : undefined;
}

/**
 * What led to the apply: a farm just written, a re-apply of the row as it
 * is, or a removal (the farm is left out of the set, and its row deleted
 * only once the kernel no longer holds its rules).
 */
export type ApplyCause = "written" | "reapply" | "remove";

/**
 * Applies the farm set scoped to `name`. The applier writes only `name`'s
 * rules; should it report other farms as changed (farmsChanged), they were
 * written from their rows too: they are marked applied and named in the
 * log, so that no farm's state is left saying something the kernel does not
 * hold. A farm nobody applied stays "pending".
 */
export async function applyFarm(ctx: ApplyContext, name: string, action: string, cause: ApplyCause): Promise<MutationResult> {
  const { db } = ctx;
  const removing = cause === "remove";
  const rows = await ctx.farmSet.rows();
  const set = rows.map(ctx.farmSet.input);
  const focus = set.find((f) => f.name === name);
  const warnings = focus && !removing ? farmWarnings([focus]) : [];
  const withWarnings = (r: MutationResult): MutationResult => (r.ok && warnings.length ? { ...r, warnings: [...new Set(warnings)] } : r);
  if (!ctx.target) {
    if (removing) {
      await deleteFarms(db, [name], `farm ${name}: delete`);
      return { ok: true, farm: name, outcome: "removed", message: `Farm ${name} deleted (no target: nothing to remove from the kernel).` };
    }
    return withWarnings({ ok: true, farm: name, outcome: "pending", message: `Farm ${name} saved. Applying is disabled (target none): the change is pending.` });
  }
  const wanted = removing ? set.filter((f) => f.name !== name) : set;
  const started = performance.now();
  try {
    await ctx.prepareTarget?.();
    const r = await ctx.kernel.applyFarms(wanted, { target: ctx.target, only: [name], injectFault: faultOf(ctx.faultFile) });
    warnings.push(...(r.warnings ?? []));
    const summary = changeSummary(r);
    const touched = [...new Set([name, ...(r.farmsChanged ?? [])])];
    await logApply(db, { target: ctx.targetLabel, action, farms: touched, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary });
    const inSet = new Set(wanted.map((f) => f.name));
    await markApplied(db, { names: touched.filter((n) => inSet.has(n)) });
    if (removing) {
      await deleteFarms(db, [name], `farm ${name}: delete`);
      return { ok: true, farm: name, outcome: "removed", message: `Farm ${name} deleted and its rules removed.` };
    }
    return withWarnings({ ok: true, farm: name, outcome: r.changed ? "applied" : "unchanged", message: `Farm ${name} applied: ${summary}.` });
  } catch (e) {
    const f = kernelFailure(e);
    if (f.kind === "unreachable") {
      // The request never reached the kernel: nothing is logged or marked. A farm written since
      // the agent answered the check before the write stays "pending", as written.
      return unavailable(cause === "written" ? { farm: name, saved: `Farm ${name} saved` } : { farm: name });
    }
    const { message, iptables } = f.kind === "invalid" ? { message: f.message, iptables: f.message } : f;
    const error = removing ? `removing the farm's rules failed: ${message}` : message;
    await logApply(db, { target: ctx.targetLabel, action, farms: [name], result: "failed", error, durationMs: performance.now() - started });
    await markFailed(db, name, error);
    if (f.kind === "failed" && f.inDoubt) {
      const sharing = farmsSharingChains(name, set);
      await markShardInDoubt(db, sharing, `a failed change of farm ${name}, whose rules share chains with this farm's, could not be undone: ${message}`);
    }
    return { ok: false, reason: "apply-failed", farm: name, message: `Applying farm ${name} failed: ${iptables}`, iptables };
  }
}

/**
 * Makes natfarm's rules in the kernel exactly the database's farms (a full,
 * unscoped apply): after an import, at start, or to clear rules of farms the
 * database no longer holds.
 */
export async function applyAllFarms(ctx: ApplyContext, action: string): Promise<MutationResult> {
  const { db } = ctx;
  if (!ctx.target) return refused("Applying is disabled (target none).");
  // A farm another process writes from now on is not what this apply reads: it is not marked applied.
  const readAt = new Date();
  const rows = await loadFarms(db);
  const names = rows.map((r) => r.name);
  const inputs = rows.map(rowToInput);
  const started = performance.now();
  try {
    await ctx.prepareTarget?.();
    const r = await ctx.kernel.applyFarms(inputs, { target: ctx.target, injectFault: faultOf(ctx.faultFile) });
    const s = r.stats;
    const summary = `${rows.length} farm(s): ${s.rulesAdded} rule(s) added, ${s.rulesDeleted} removed`;
    // Every farm of the database, and any farm whose rules left the kernel (gone from the database).
    const touched = [...new Set([...names, ...(r.farmsChanged ?? [])])];
    await logApply(db, { target: ctx.targetLabel, action, farms: touched, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary });
    await markApplied(db, { writtenBefore: readAt });
    const warnings = [...new Set([...farmWarnings(inputs), ...(r.warnings ?? [])])];
    return { ok: true, farm: "*", outcome: r.changed ? "applied" : "unchanged", message: `Applied ${summary}.`, ...(warnings.length ? { warnings } : {}) };
  } catch (e) {
    const f = kernelFailure(e);
    if (f.kind === "unreachable") return unavailable({ farm: "*" });
    const { message, iptables } = f.kind === "invalid" ? { message: f.message, iptables: f.message } : f;
    await logApply(db, { target: ctx.targetLabel, action, farms: names, result: "failed", error: message, durationMs: performance.now() - started });
    await markAllFailed(db, message, f.kind === "failed" && f.inDoubt);
    return { ok: false, reason: "apply-failed", farm: "*", message: `Applying all farms failed: ${iptables}`, iptables };
  }
}
