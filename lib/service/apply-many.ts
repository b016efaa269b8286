import { existsSync, readFileSync } from "node:fs";
import type { ApplyContext } from "./apply-farms.ts";
import { changeSummary, logApply, markApplied } from "./apply-log.ts";
import { kernelFailure, unavailable } from "./errors.ts";
import { nameList } from "./farm-bulk.ts";
import type { MutationResult } from "./result.ts";

/** What a change says while changes are staged. */
export const STAGED = "Staged: pending until Apply changes (the kernel keeps what was last applied).";

/** apply-farms.ts's test hook (NATFARM_FAULT_FILE), read the same way. */
function faultOf(file: string | null | undefined): "nat" | "mangle" | undefined {
  if (!file || !existsSync(file)) return undefined;
  const table = readFileSync(file, "utf8").trim();
  return table === "nat" || table === "mangle" ? table : undefined;
}

/**
 * The database's farms applied scoped to `names` (farms written, and farms
 * deleted from the database whose rules must leave the kernel) in ONE kernel
 * transaction: a revert or a restore of many farms costs one
 * iptables-restore, and a refusal leaves all of them as they were.
 */
export async function applyNames(ctx: ApplyContext, names: string[], action: string, done: string, opts: { evenStaged?: boolean } = {}): Promise<MutationResult> {
  const { db } = ctx;
  if (!ctx.target) return { ok: true, farm: "*", outcome: "pending", message: `${done} Applying is disabled (target none): the change is pending.` };
  if (!opts.evenStaged && (await ctx.staged?.())) return { ok: true, farm: "*", outcome: "pending", message: `${done} ${STAGED}` };
  ctx.farmSet.forget();
  const rows = await ctx.farmSet.rows();
  const set = rows.map(ctx.farmSet.input);
  const started = performance.now();
  try {
    await ctx.prepareTarget?.();
    const r = await ctx.kernel.applyFarms(set, { target: ctx.target, only: names, injectFault: faultOf(ctx.faultFile) });
    const logged = [...new Set([...names, ...(r.farmsChanged ?? [])])];
    await logApply(db, { target: ctx.targetLabel, action, farms: logged, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary: changeSummary(r) });
    const inSet = new Set(set.map((f) => f.name));
    await markApplied(db, { names: logged.filter((n) => inSet.has(n)) });
    const rules = r.changed ? `${r.stats.rulesAdded} rule(s) added, ${r.stats.rulesDeleted} removed in one apply.` : "The kernel already held these rules.";
    return { ok: true, farm: "*", outcome: r.changed ? "applied" : "unchanged", message: `${done} ${rules}`, ...(r.warnings?.length ? { warnings: [...new Set(r.warnings)] } : {}) };
  } catch (e) {
    const f = kernelFailure(e);
    if (f.kind === "unreachable") return unavailable({ farm: "*", saved: done.replace(/\.$/, "") });
    const { message, iptables } = f.kind === "invalid" ? { message: f.message, iptables: f.message } : f;
    await logApply(db, { target: ctx.targetLabel, action, farms: names, result: "failed", error: message, durationMs: performance.now() - started });
    await db.farm.updateMany({ where: { name: { in: names } }, data: { applyState: "failed", applyError: message } });
    return { ok: false, reason: "apply-failed", farm: "*", message: `Applying ${names.length === 1 ? `farm ${names[0]}` : `farms ${nameList(names)}`} failed: ${iptables}`, iptables };
  }
}
