import { AsyncLocalStorage } from "node:async_hooks";
import { toFileFarm } from "../farms/file.ts";
import type { Farm } from "../farms/schema.ts";
import type { Prisma, PrismaClient } from "../generated/prisma/client.ts";
import type { FarmRow } from "./farm-rows.ts";
import { rowToResolved } from "./farm-rows.ts";

/**
 * The configuration history: a revision of the whole desired state (every
 * farm with its backends) for every change of it, written in the same
 * database transaction as the change (./store.ts, ./farm-io.ts,
 * ./farm-bulk.ts, ./apply-farms.ts call recordRevision inside theirs), so
 * there is never a revision without its change nor a change without its
 * revision, whoever made it: the console, the API, the CLI.
 *
 * What counts as configuration: everything the farm file holds, except a
 * backend's "down", which only the health checker sets. A backend going
 * down or back up by health check is state, not configuration: it makes no
 * revision, and a revision shows such a backend as in service ("up"), so a
 * revert never marks a healthy backend down nor a failing one up (the
 * current health verdict is kept; see farm-io.ts).
 *
 * Storage: a revision stores only its change (the farms it touched, before
 * and after, in the file format), so a one-farm edit at 5,000 farms writes
 * a few hundred bytes, not the whole set; every SNAPSHOT_EVERY-th revision
 * (and the first) also stores the whole farm file. Revision N is then the
 * newest snapshot at or before N with the later changes up to N replayed.
 * Only the newest KEEP revisions are kept (NATFARM_HISTORY_KEEP, default
 * 1,000), pruned back to a snapshot so every kept one can still be rebuilt:
 * at most KEEP + SNAPSHOT_EVERY rows, each a few hundred bytes, plus the
 * snapshots (the whole farm file: ~1.5 MB at 5,000 farms, so ~30 MB at
 * most for the default bound).
 */
export type ConfigFarm = ReturnType<typeof toFileFarm>;
export interface FarmChange {
  farm: string;
  before: ConfigFarm | null;
  after: ConfigFarm | null;
}

export type Via = "console" | "api" | "cli" | "system";
export interface Author {
  /** "alice", "alice (token 3)", "cli (root)" */
  name: string;
  via: Via;
}

type Tx = Prisma.TransactionClient | PrismaClient;

export const SNAPSHOT_EVERY = 50;
export function historyKeep(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.NATFARM_HISTORY_KEEP ?? "");
  return Number.isInteger(n) && n >= 10 ? n : 1000;
}

// ---------------------------------------------------------------- who

// One store per process, on globalThis: Next bundles route handlers, pages and actions apart, and
// the console's one farm service (also on globalThis) must see the author any of them set.
const shared = globalThis as unknown as { natfarmAuthors?: AsyncLocalStorage<Author> };
const authors = (shared.natfarmAuthors ??= new AsyncLocalStorage<Author>());
let fallback: Author = { name: "system", via: "system" };

/**
 * Who the changes made inside `run` are by. The callers that know the user
 * (the console's audited actions, the API's handlers, the CLI) wrap the
 * service call; the service's serialized queue keeps the context, as
 * promise callbacks run in the context they were queued in.
 */
export function withAuthor<T>(author: Author, run: () => Promise<T>): Promise<T> {
  return authors.run(author, run);
}

/** The process's author when no caller named one: the CLI sets "cli (<system user>)". */
export function setDefaultAuthor(author: Author): void {
  fallback = author;
}

export function currentAuthor(): Author {
  return authors.getStore() ?? fallback;
}

// ---------------------------------------------------------------- the farms as configuration

/** A farm as configuration: the file format, with the health checker's "down" read as in service. */
export function configFarm(row: FarmRow): ConfigFarm {
  const f = toFileFarm(rowToResolved(row) as Farm);
  return { ...f, backends: f.backends.map((b) => (b.state === "down" ? withoutState(b) : b)) };
}

function withoutState<T extends { state?: string }>(b: T): T {
  const { state: _down, ...rest } = b;
  return rest as T;
}

/** The named farms as they are now (null: no such farm), read in `tx`. */
export async function readConfig(tx: Tx, names: string[]): Promise<Map<string, ConfigFarm | null>> {
  const out = new Map<string, ConfigFarm | null>(names.map((n) => [n, null]));
  for (let i = 0; i < names.length; i += 500) {
    const rows = (await tx.farm.findMany({ where: { name: { in: names.slice(i, i + 500) } }, include: { backends: { orderBy: { position: "asc" } } } })) as FarmRow[];
    for (const r of rows) out.set(r.name, configFarm(r));
  }
  return out;
}

/** Every farm, by name (two plain queries, as store.ts's loadFarms, within `tx`). */
export async function readAllConfig(tx: Tx): Promise<Map<string, ConfigFarm>> {
  const [farms, backends] = await Promise.all([
    tx.farm.findMany({ orderBy: { name: "asc" } }),
    tx.backend.findMany({ orderBy: [{ farmId: "asc" }, { position: "asc" }] }),
  ]);
  const byFarm = new Map<number, FarmRow["backends"]>();
  for (const b of backends) {
    let list = byFarm.get(b.farmId);
    if (!list) byFarm.set(b.farmId, (list = []));
    list.push(b);
  }
  return new Map(farms.map((f) => [f.name, configFarm({ ...f, backends: byFarm.get(f.id) ?? [] })]));
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The farms that differ between two readings of the same names. */
export function changesBetween(before: Map<string, ConfigFarm | null>, after: Map<string, ConfigFarm | null>): FarmChange[] {
  const names = [...new Set([...before.keys(), ...after.keys()])].sort();
  const out: FarmChange[] = [];
  for (const farm of names) {
    const b = before.get(farm) ?? null;
    const a = after.get(farm) ?? null;
    if (!same(b, a)) out.push({ farm, before: b, after: a });
  }
  return out;
}

// ---------------------------------------------------------------- writing

/**
 * Records the revision a write made, inside the write's transaction: the
 * farms `names` as read before the write (`before`) and now. Nothing
 * differs (a health verdict, settings saved unchanged): no revision, null.
 */
export async function recordRevision(tx: Tx, before: Map<string, ConfigFarm | null>, summary: string, opts: { author?: Author; all?: boolean } = {}): Promise<number | null> {
  return (await recordRevisionOf(tx, before, summary, opts))?.id ?? null;
}

/**
 * recordRevision for a change of a few farms, whose snapshot, when one is
 * due, is left to snapshotLater once the transaction has committed: reading
 * every farm inside the change (0.4-1.4 s at 5,000 farms) would make every
 * SNAPSHOT_EVERY-th click that much slower, and hold the write lock. Only
 * the very first revision, with no snapshot to rebuild from, takes its
 * snapshot at once.
 */
export async function recordRevisionOf(tx: Tx, before: Map<string, ConfigFarm | null>, summary: string, opts: { author?: Author; all?: boolean; snapshotLater?: boolean } = {}): Promise<{ id: number; snapshotDue: boolean } | null> {
  const after = opts.all ? await readAllConfig(tx) : await readConfig(tx, [...before.keys()]);
  const changes = changesBetween(before, after);
  if (changes.length === 0) return null;
  const author = opts.author ?? currentAuthor();
  const row = await tx.configRevision.create({ data: { author: author.name.slice(0, 200), via: author.via, summary: summary.slice(0, 500), changes: JSON.stringify(changes) } });
  const last = await tx.configRevision.findFirst({ where: { snapshot: { not: null }, id: { lt: row.id } }, orderBy: { id: "desc" }, select: { id: true } });
  let snapshotDue = false;
  if (!last || row.id - last.id >= SNAPSHOT_EVERY) {
    if (last && opts.snapshotLater && !opts.all) snapshotDue = true;
    else {
      const all = opts.all ? after : await readAllConfig(tx);
      await tx.configRevision.update({ where: { id: row.id }, data: { snapshot: JSON.stringify({ farms: [...all.values()] }) } });
    }
  }
  await prune(tx, row.id);
  return { id: row.id, snapshotDue };
}

const snapshotting = new Set<Promise<void>>();

/**
 * Writes revision `id`'s snapshot in the background, rebuilt from the
 * newest earlier snapshot and the changes since (stateAt: exactly the
 * state at `id`, whatever was written after it). Until it is there the
 * history stays whole (revisions rebuild from the earlier snapshot, pruning
 * keeps that one); should it never be written (the process ends first, a
 * failure), the next revision finds its snapshot still due and does it.
 */
export function snapshotLater(db: PrismaClient, id: number): void {
  const job = (async () => {
    try {
      const farms = await stateAt(db, id);
      await db.configRevision.updateMany({ where: { id, snapshot: null }, data: { snapshot: JSON.stringify({ farms }) } });
    } catch {
      /* pruned meanwhile, or the database closed: the next revision's snapshot is due instead */
    }
  })();
  snapshotting.add(job);
  void job.finally(() => snapshotting.delete(job));
}

/** Until the snapshots snapshotLater started are written (tests, and a process about to close its database). */
export async function snapshotsWritten(): Promise<void> {
  while (snapshotting.size) await Promise.all([...snapshotting]);
}

/** Drops revisions older than the newest KEEP, back to a snapshot from which every kept one can be rebuilt. */
async function prune(tx: Tx, newest: number): Promise<void> {
  const cutoff = newest - historyKeep() + 1;
  if (cutoff <= 1) return;
  const base = await tx.configRevision.findFirst({ where: { snapshot: { not: null }, id: { lte: cutoff } }, orderBy: { id: "desc" }, select: { id: true } });
  if (base) await tx.configRevision.deleteMany({ where: { id: { lt: base.id } } });
}

// ---------------------------------------------------------------- reading

export interface RevisionSummary {
  id: number;
  at: Date;
  author: string;
  via: string;
  summary: string;
  /** The farms it changed. */
  farms: string[];
}

export interface Revision extends RevisionSummary {
  changes: FarmChange[];
}

type RevisionRow = { id: number; at: Date; author: string; via: string; summary: string; changes: string };

function toRevision(r: RevisionRow): Revision {
  const changes = JSON.parse(r.changes) as FarmChange[];
  return { id: r.id, at: r.at, author: r.author, via: r.via, summary: r.summary, farms: changes.map((c) => c.farm), changes };
}

export const SUMMARY_SELECT = { id: true, at: true, author: true, via: true, summary: true, changes: true } as const;

/** A revision row as listed: the farms it touched, without its changes. */
export function toRevisionSummary(r: RevisionRow): RevisionSummary {
  const { changes: _c, ...rest } = toRevision(r);
  return rest;
}

/** Newest first; `before` (an id) pages back. */
export async function listRevisions(db: PrismaClient, opts: { limit?: number; before?: number } = {}): Promise<RevisionSummary[]> {
  const rows = await db.configRevision.findMany({
    where: opts.before ? { id: { lt: opts.before } } : {},
    orderBy: { id: "desc" },
    take: Math.min(Math.max(opts.limit ?? 100, 1), 1000),
    select: SUMMARY_SELECT,
  });
  return rows.map(toRevisionSummary);
}

export async function getRevision(db: PrismaClient, id: number): Promise<Revision | null> {
  const r = await db.configRevision.findUnique({ where: { id }, select: SUMMARY_SELECT });
  return r ? toRevision(r) : null;
}

export async function latestRevisionId(db: PrismaClient): Promise<number | null> {
  return (await db.configRevision.findFirst({ orderBy: { id: "desc" }, select: { id: true } }))?.id ?? null;
}

export class RevisionGone extends Error {
  override name = "RevisionGone";
}

/** The whole desired state at revision `id`, farms by name in name order; RevisionGone when it is not (or no longer) kept. */
export async function stateAt(db: PrismaClient, id: number): Promise<ConfigFarm[]> {
  const exists = await db.configRevision.findUnique({ where: { id }, select: { id: true } });
  if (!exists) throw new RevisionGone(`There is no revision ${id} (the history keeps the newest ${historyKeep()}).`);
  const base = await db.configRevision.findFirst({ where: { snapshot: { not: null }, id: { lte: id } }, orderBy: { id: "desc" }, select: { id: true, snapshot: true } });
  if (!base) throw new RevisionGone(`Revision ${id} can no longer be rebuilt (its snapshot was pruned).`);
  const state = new Map<string, ConfigFarm>(((JSON.parse(base.snapshot!) as { farms: ConfigFarm[] }).farms).map((f) => [f.name, f]));
  const later = await db.configRevision.findMany({ where: { id: { gt: base.id, lte: id } }, orderBy: { id: "asc" }, select: { changes: true } });
  for (const r of later) {
    for (const c of JSON.parse(r.changes) as FarmChange[]) {
      if (c.after) state.set(c.farm, c.after);
      else state.delete(c.farm);
    }
  }
  return [...state.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
