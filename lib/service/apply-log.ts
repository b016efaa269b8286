import type { KernelApplyResult } from "../kernel/index.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";

/**
 * How an apply is remembered: one apply-log entry naming every farm it
 * changed, and each farm's applyState saying whether the kernel holds its
 * row. A farm is "applied" only after an apply wrote (or found) its rules;
 * the History page and the farm badges read nothing else.
 */
export interface ApplyLogEntry {
  target: string;
  action: string;
  farms: string[];
  result: "ok" | "failed" | "noop";
  error?: string | null;
  durationMs: number;
  summary?: string;
}

export async function logApply(db: PrismaClient, entry: ApplyLogEntry): Promise<void> {
  await db.applyLog.create({
    data: {
      target: entry.target,
      action: entry.action,
      farms: JSON.stringify(entry.farms),
      result: entry.result,
      error: entry.error ?? null,
      durationMs: Math.round(entry.durationMs),
      summary: entry.summary ?? null,
    },
  });
}

/**
 * A `natfarm import` is recorded like an apply, although it only writes the
 * database (the farms it wrote are pending until applied): the History page
 * is where an operator looks for what changed the farms.
 */
export async function logImport(db: PrismaClient, summary: { created: string[]; updated: string[]; removed: string[]; unchanged: string[] }, durationMs: number): Promise<void> {
  const changed = [...summary.created, ...summary.updated, ...summary.removed];
  const part = (label: string, names: string[]) => (names.length ? `${label} ${names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", ")}` : "");
  const parts = [part("created", summary.created), part("updated", summary.updated), part("removed", summary.removed)].filter(Boolean);
  await logApply(db, {
    target: "database",
    action: "import",
    farms: changed,
    result: changed.length ? "ok" : "noop",
    durationMs,
    summary: changed.length
      ? `${parts.join("; ")}${summary.unchanged.length ? `; ${summary.unchanged.length} unchanged` : ""}: written to the database, pending until applied`
      : `the file's ${summary.unchanged.length} farm(s) were already in the database`,
  });
}

export function changeSummary(r: KernelApplyResult): string {
  const s = r.stats;
  return r.changed
    ? `${s.rulesAdded} rule(s) added, ${s.rulesDeleted} removed; ${s.chainsCreated} chain(s) created, ${s.chainsRewritten} rewritten, ${s.chainsDeleted} deleted (${r.mode})`
    : "the kernel already held these rules";
}

export async function markApplied(db: PrismaClient, where: { names: string[] } | { writtenBefore: Date }): Promise<void> {
  const filter = "names" in where ? { name: { in: where.names } } : { updatedAt: { lte: where.writtenBefore } };
  if ("names" in where && where.names.length === 0) return;
  await db.farm.updateMany({ where: filter, data: { applyState: "applied", applyError: null, appliedAt: new Date() } });
}

export async function markFailed(db: PrismaClient, name: string, error: string): Promise<void> {
  await db.farm.update({ where: { name }, data: { applyState: "failed", applyError: error } });
}

/**
 * A refused change that could not be undone leaves the kernel holding a
 * half-written shard: the farms that share it cannot be trusted to be
 * applied either.
 */
export async function markShardInDoubt(db: PrismaClient, names: string[], error: string): Promise<void> {
  if (names.length === 0) return;
  await db.farm.updateMany({ where: { name: { in: names }, applyState: "applied" }, data: { applyState: "failed", applyError: error } });
}

/** A refused full apply: the kernel kept its previous rules, so only farms it did not hold yet fail, unless nothing can be trusted. */
export async function markAllFailed(db: PrismaClient, error: string, inDoubt: boolean): Promise<void> {
  await db.farm.updateMany({ where: inDoubt ? {} : { applyState: { not: "applied" } }, data: { applyState: "failed", applyError: error } });
}
