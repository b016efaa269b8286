import type { PrismaClient } from "../generated/prisma/client.ts";
import { compareConfigs, type FarmDiff } from "./config-diff.ts";
import { latestRevisionId, listRevisions, readAllConfig, type ConfigFarm, type RevisionSummary } from "./config-history.ts";
import type { Engine } from "../kernel/engine.ts";

/**
 * Staged changes (pfSense's and OPNsense's "apply changes"): with the
 * installation setting on, an edit changes the desired state only (a
 * revision, pending), the kernel keeps what was last applied, and one
 * Apply changes commits every pending change in one kernel transaction;
 * Discard brings the desired state back to what the kernel holds and leaves
 * the kernel alone. An apply can be made under a savepoint: unless
 * confirmed before its deadline, the configuration before it comes back by
 * itself (the health checker's loop watches the deadline, persisted here,
 * so a closed browser or a restarted console does not lose it).
 *
 * The state is one row (StagedState, id 1). What the kernel holds is kept
 * as the whole configuration (`applied`), not as a revision number alone:
 * Discard must work even once that revision has been pruned.
 */
export interface StagedRow {
  enabled: boolean;
  appliedRevision: number | null;
  applied: ConfigFarm[] | null;
  savepointUntil: Date | null;
  savepointConfig: ConfigFarm[] | null;
  savepointRevision: number | null;
  savepointOutcome: string | null;
}

const parseFarms = (text: string | null): ConfigFarm[] | null => (text ? (JSON.parse(text) as { farms: ConfigFarm[] }).farms : null);
export const farmsText = (farms: ConfigFarm[]) => JSON.stringify({ farms });

export async function readStaged(db: PrismaClient): Promise<StagedRow> {
  const r = await db.stagedState.findUnique({ where: { id: 1 } });
  return {
    enabled: r?.enabled ?? false,
    appliedRevision: r?.appliedRevision ?? null,
    applied: parseFarms(r?.applied ?? null),
    savepointUntil: r?.savepointUntil ?? null,
    savepointConfig: parseFarms(r?.savepointConfig ?? null),
    savepointRevision: r?.savepointRevision ?? null,
    savepointOutcome: r?.savepointOutcome ?? null,
  };
}

/** Only whether staging is on: one indexed read per mutation. */
export async function stagingOn(db: PrismaClient): Promise<boolean> {
  return (await db.stagedState.findUnique({ where: { id: 1 }, select: { enabled: true } }))?.enabled ?? false;
}

export async function writeStaged(db: PrismaClient, data: Partial<{ enabled: boolean; appliedRevision: number | null; applied: string | null; savepointUntil: Date | null; savepointConfig: string | null; savepointRevision: number | null; savepointOutcome: string | null }>): Promise<void> {
  await db.stagedState.upsert({ where: { id: 1 }, create: { id: 1, ...data }, update: data });
}

/** The kernel now holds the desired state as it is (an apply, a discard, staging turned on). */
export async function markAllApplied(db: PrismaClient, extra: Parameters<typeof writeStaged>[1] = {}): Promise<void> {
  const [config, head] = await Promise.all([readAllConfig(db), latestRevisionId(db)]);
  await writeStaged(db, { applied: farmsText([...config.values()]), appliedRevision: head, ...extra });
}

export interface PendingView {
  enabled: boolean;
  /** Revisions after the one the kernel holds, newest first. */
  revisions: RevisionSummary[];
  /** What Apply changes would do, farm by farm: words, JSON and the rules it adds and removes. */
  diffs: FarmDiff[];
  /** The farms Apply changes writes (created, changed, deleted). */
  farms: string[];
  savepoint: { until: Date; revision: number | null } | null;
  lastOutcome: string | null;
}

export async function pendingView(db: PrismaClient, engine: Engine = "iptables"): Promise<PendingView> {
  const s = await readStaged(db);
  const savepoint = s.savepointUntil ? { until: s.savepointUntil, revision: s.savepointRevision } : null;
  if (!s.enabled) return { enabled: false, revisions: [], diffs: [], farms: [], savepoint, lastOutcome: s.savepointOutcome };
  const [now, revisions] = await Promise.all([readAllConfig(db), s.appliedRevision === null ? listRevisions(db, { limit: 1000 }) : pendingRevisions(db, s.appliedRevision)]);
  const diffs = compareConfigs(s.applied ?? [], [...now.values()], engine);
  return { enabled: true, revisions, diffs, farms: diffs.map((d) => d.farm), savepoint, lastOutcome: s.savepointOutcome };
}

async function pendingRevisions(db: PrismaClient, after: number): Promise<RevisionSummary[]> {
  const all = await listRevisions(db, { limit: 1000 });
  return all.filter((r) => r.id > after);
}

/** Whether a farm differs from what the kernel holds (a health verdict on a farm without pending changes applies at once). */
export function farmPending(s: StagedRow, name: string, now: ConfigFarm | null): boolean {
  const was = s.applied?.find((f) => f.name === name) ?? null;
  return JSON.stringify(was) !== JSON.stringify(now);
}

/** NATFARM_SAVEPOINT_SECONDS: how long an apply under a savepoint waits for its confirmation (default 60, 2 to 3600). */
export function savepointSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.NATFARM_SAVEPOINT_SECONDS ?? "");
  return Number.isInteger(n) && n >= 2 && n <= 3600 ? n : 60;
}
