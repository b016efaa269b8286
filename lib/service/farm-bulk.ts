import { FarmValidationError, validateFarms } from "../applier/index.ts";
import type { FarmInput } from "../farms/schema.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { farmsSharingChains } from "../netfilter/layout.ts";
import { existsSync, readFileSync } from "node:fs";
import type { ApplyContext } from "./apply-farms.ts";
import { changeSummary, logApply, markApplied, markShardInDoubt } from "./apply-log.ts";
import { isWriteConflict } from "./conflict.ts";
import { kernelFailure, notFound, refused, unavailable } from "./errors.ts";
import { backendName } from "./farm-change.ts";
import type { FarmRow } from "./farm-rows.ts";
import type { MutationResult } from "./result.ts";
import { readConfig, recordRevision } from "./config-history.ts";
import { deleteFarms } from "./store.ts";
import { farmWriteTransaction } from "../db/write-lock.ts";

/**
 * One change to many farms from the farms list: start, stop, delete, or
 * drain a backend address in every chosen farm that has it. All of it or
 * none: the farms are checked first (a farm gone, an address nowhere),
 * written in one database transaction and applied in ONE scoped kernel
 * transaction, so 300 farms cost one iptables-restore, not 300, and a
 * refused apply leaves none of them half-changed in the kernel.
 */
export type BulkOp = { kind: "start" } | { kind: "stop" } | { kind: "delete" } | { kind: "drain"; ip: string; port?: number | null };

export interface BulkResult {
  result: MutationResult;
  /** The farms the change touched (a drain skips a chosen farm without the address). */
  farms: string[];
}

/** A backend address as the list's drain field takes it: "203.0.113.10" (every port) or "203.0.113.10:80". */
export function parseBackendAddress(text: string): { ip: string; port: number | null } | null {
  const m = /^\s*(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?\s*$/.exec(text);
  if (!m) return null;
  if (m[1]!.split(".").some((o) => Number(o) > 255)) return null;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { ip: m[1]!, port };
}

/** apply-farms.ts's test hook (NATFARM_FAULT_FILE), read the same way: its content is the table to break. */
function faultOf(file: string | null | undefined): "nat" | "mangle" | undefined {
  if (!file || !existsSync(file)) return undefined;
  const table = readFileSync(file, "utf8").trim();
  return table === "nat" || table === "mangle" ? table : undefined;
}

/** A chosen farm deleted by another process between the read and the write. */
class FarmGone extends Error {}

const matches = (b: { ip: string; port: number | null }, op: { ip: string; port?: number | null }) => b.ip === op.ip && (op.port == null || b.port === op.port);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Names shown in a message: all of them up to 20, then how many more. */
export function nameList(names: string[]): string {
  return names.length <= 20 ? names.join(", ") : `${names.slice(0, 20).join(", ")} and ${names.length - 20} more`;
}

/** Runs inside the service's serialized queue (farm-service.ts): nothing else writes the farm set meanwhile in this process. */
export async function bulkChange(ctx: ApplyContext, names: string[], op: BulkOp): Promise<BulkResult> {
  const { db } = ctx;
  const none = (result: MutationResult): BulkResult => ({ result, farms: [] });
  const wantedNames = [...new Set(names)];
  if (wantedNames.length === 0) return none(refused("No farm was chosen: nothing changed."));
  const rows = await ctx.farmSet.rows();
  const byName = new Map(rows.map((r) => [r.name, r]));
  const missing = wantedNames.filter((n) => !byName.has(n));
  if (missing.length === 1) return none(notFound(missing[0]!));
  if (missing.length) return none(refused(`No farms named ${nameList(missing)}: nothing changed.`));

  const chosen = wantedNames.map((n) => byName.get(n)!);
  // What each farm becomes; a farm the change leaves as it is is not touched at all.
  const touched: FarmRow[] = [];
  const next = new Map<string, FarmInput>();
  for (const row of chosen) {
    const input = ctx.farmSet.input(row);
    if (op.kind === "start" || op.kind === "stop") {
      const status = op.kind === "start" ? "up" : "stopped";
      if (row.status === status) continue;
      next.set(row.name, { ...input, status });
    } else if (op.kind === "drain") {
      const backends = input.backends ?? [];
      if (!backends.some((b) => matches({ ip: String(b.ip), port: b.port ?? null }, op) && b.state !== "maintenance")) continue;
      next.set(row.name, { ...input, backends: backends.map((b) => (matches({ ip: String(b.ip), port: b.port ?? null }, op) ? { ...b, state: "maintenance" } : b)) });
    }
    touched.push(row);
  }
  const touchedNames = touched.map((r) => r.name);
  if (touched.length === 0) {
    const why =
      op.kind === "drain"
        ? `No chosen farm has backend ${backendName({ ip: op.ip, port: op.port ?? null })} in service`
        : `Every chosen farm is already ${op.kind === "start" ? "started" : "stopped"}`;
    return none(refused(`${why}: nothing changed.`));
  }

  const removing = op.kind === "delete";
  const gone = new Set(removing ? touchedNames : []);
  const set = rows.filter((r) => !gone.has(r.name)).map((r) => next.get(r.name) ?? ctx.farmSet.input(r));
  if (!removing) {
    // Starting or draining changes no address or mark, but the whole set is checked as every write checks it.
    try {
      validateFarms(set);
    } catch (e) {
      if (e instanceof FarmValidationError) return none(refused(`Nothing changed: the farm set would be invalid: ${e.issues.join("; ")}`));
      throw e;
    }
  }

  const action = bulkAction(op, touchedNames.length);
  if (!removing) {
    try {
      await writeBulk(db, touched, op, `${action}: ${nameList(touchedNames)}`);
    } catch (e) {
      if (e instanceof FarmGone || isWriteConflict(e)) return none(refused("Another change wrote these farms meanwhile: nothing changed. Try again."));
      throw e;
    }
    // The cache re-reads the written rows on its next use (their update times moved).
  }

  const done = doneWords(op, touchedNames);
  if (ctx.target && (await ctx.staged?.())) {
    if (removing) {
      await deleteFarms(db, touchedNames, `${action}: ${nameList(touchedNames)}`);
      ctx.farmSet.forget();
      return { result: { ok: true, farm: "*", outcome: "removed", message: `${done} Staged: their rules stay in the kernel until Apply changes.` }, farms: touchedNames };
    }
    return { result: { ok: true, farm: "*", outcome: "pending", message: `${done} Staged: pending until Apply changes.` }, farms: touchedNames };
  }
  if (!ctx.target) {
    if (removing) {
      await deleteFarms(db, touchedNames, `${action}: ${nameList(touchedNames)}`);
      ctx.farmSet.forget();
      return { result: { ok: true, farm: "*", outcome: "removed", message: `${done} No target: nothing to remove from the kernel.` }, farms: touchedNames };
    }
    return { result: { ok: true, farm: "*", outcome: "pending", message: `${done} Applying is disabled (target none): the change is pending.` }, farms: touchedNames };
  }

  const started = performance.now();
  try {
    await ctx.prepareTarget?.();
    const r = await ctx.kernel.applyFarms(set, { target: ctx.target, only: touchedNames, injectFault: faultOf(ctx.faultFile) });
    const summary = changeSummary(r);
    const logged = [...new Set([...touchedNames, ...(r.farmsChanged ?? [])])];
    await logApply(db, { target: ctx.targetLabel, action, farms: logged, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary });
    const inSet = new Set(set.map((f) => f.name));
    await markApplied(db, { names: logged.filter((n) => inSet.has(n)) });
    if (removing) {
      await deleteFarms(db, touchedNames, `${action}: ${nameList(touchedNames)}`);
      ctx.farmSet.forget();
    }
    const rules = r.changed ? `${r.stats.rulesAdded} rule(s) added, ${r.stats.rulesDeleted} removed in one apply.` : "The kernel already held these rules.";
    return { result: { ok: true, farm: "*", outcome: removing ? "removed" : r.changed ? "applied" : "unchanged", message: `${done} ${rules}`, ...(r.warnings?.length ? { warnings: [...new Set(r.warnings)] } : {}) }, farms: touchedNames };
  } catch (e) {
    const f = kernelFailure(e);
    if (f.kind === "unreachable") {
      return { result: unavailable(removing ? { farm: "*" } : { farm: "*", saved: `${plural(touchedNames.length, "farm")} saved` }), farms: removing ? [] : touchedNames };
    }
    const { message, iptables } = f.kind === "invalid" ? { message: f.message, iptables: f.message } : f;
    const error = removing ? `removing the farms' rules failed: ${message}` : message;
    await logApply(db, { target: ctx.targetLabel, action, farms: touchedNames, result: "failed", error, durationMs: performance.now() - started });
    await db.farm.updateMany({ where: { name: { in: touchedNames } }, data: { applyState: "failed", applyError: error } });
    if (f.kind === "failed" && f.inDoubt) {
      // Farms whose rules share a chain (a mark block, a dispatch node) with a touched farm's.
      const all = rows.map((r) => next.get(r.name) ?? ctx.farmSet.input(r));
      const sharing = [...new Set(touchedNames.flatMap((n) => farmsSharingChains(n, all)))].filter((n) => !touchedNames.includes(n));
      await markShardInDoubt(db, sharing, `a failed change of ${plural(touchedNames.length, "farm")} in the same shard could not be undone: ${message}`);
    }
    return { result: { ok: false, reason: "apply-failed", farm: "*", message: `Applying ${plural(touchedNames.length, "farm")} failed: ${iptables}`, iptables }, farms: touchedNames };
  }
}

/** Status and backend states only: one transaction, every touched farm pending until the apply says otherwise. */
async function writeBulk(db: PrismaClient, touched: FarmRow[], op: BulkOp, summary: string): Promise<void> {
  const ids = touched.map((r) => r.id);
  await farmWriteTransaction(db, async (tx) => {
    const before = await readConfig(tx, touched.map((r) => r.name));
    const data = { applyState: "pending", applyError: null } as const;
    if (op.kind === "start" || op.kind === "stop") {
      const n = await tx.farm.updateMany({ where: { id: { in: ids } }, data: { ...data, status: op.kind === "start" ? "up" : "stopped" } });
      if (n.count !== ids.length) throw new FarmGone();
    } else if (op.kind === "drain") {
      await tx.backend.updateMany({ where: { farmId: { in: ids }, ip: op.ip, ...(op.port == null ? {} : { port: op.port }) }, data: { state: "maintenance" } });
      const n = await tx.farm.updateMany({ where: { id: { in: ids } }, data });
      if (n.count !== ids.length) throw new FarmGone();
    }
    await recordRevision(tx, before, summary);
  });
}

function bulkAction(op: BulkOp, n: number): string {
  if (op.kind === "drain") return `bulk drain backend ${backendName({ ip: op.ip, port: op.port ?? null })} (${plural(n, "farm")})`;
  return `bulk ${op.kind === "delete" ? "remove" : op.kind} (${plural(n, "farm")})`;
}

function doneWords(op: BulkOp, names: string[]): string {
  const n = plural(names.length, "farm");
  const list = nameList(names);
  switch (op.kind) {
    case "start":
      return `${n} started: ${list}.`;
    case "stop":
      return `${n} stopped: ${list}; new connections to them are no longer balanced.`;
    case "delete":
      return `${n} deleted: ${list}.`;
    case "drain":
      return `Backend ${backendName({ ip: op.ip, port: op.port ?? null })} is draining in ${n}: ${list}; no new connections, open ones continue.`;
  }
}
