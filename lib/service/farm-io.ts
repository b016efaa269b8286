import { toFileFarm } from "../farms/file.ts";
import { backendKey } from "../farms/marks.ts";
import { resolveMarks } from "../farms/resolve.ts";
import { FarmListSchema, type Farm } from "../farms/schema.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { retryOnConflict } from "./conflict.ts";
import { logImport } from "./apply-log.ts";
import { importConflict, invalidFarms } from "./errors.ts";
import { rowToInput, rowToResolved } from "./farm-rows.ts";
import { backendColumns, farmColumns, loadFarms } from "./store.ts";
import { readAllConfig, readConfig, recordRevision } from "./config-history.ts";
import { farmWriteTransaction } from "../db/write-lock.ts";

/**
 * Moving farms between the database and the declarative file format
 * (`natfarm import` / `natfarm export`). Imported farms are written as
 * pending: the database is the desired state, and the console or
 * `natfarm apply` brings the kernel to it.
 */
export interface ImportSummary {
  created: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
}

// Well under SQLite's bound-parameter limit, with ~10 columns per row in batched inserts.
const CHUNK = 500;

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function sameFarm(a: Farm, b: ReturnType<typeof rowToResolved>): boolean {
  return JSON.stringify(toFileFarm(a)) === JSON.stringify(toFileFarm(b));
}

/**
 * Upserts the file's farms by name. With `replace`, farms missing from the
 * file are removed from the database too. The resulting set is validated as a
 * whole; a backend the database already knows keeps its mark unless the file
 * sets one. Imported farms are written "pending" and never applied here.
 *
 * Another process may write the same farms meanwhile (two imports at once,
 * the console): the write it meets is done again from a fresh read, so a farm
 * created meanwhile is updated (the file's content wins, as for any farm the
 * database holds) and a mark taken meanwhile is allocated anew. Only when the
 * farms keep changing under it does the import give up, with a
 * ConcurrentChangeError naming them (nothing written).
 */
export interface ImportOptions {
  replace?: boolean;
  /** What the configuration history calls it (default: the import's counts). */
  summary?: string;
  /**
   * A backend the file has in service that the health checker has down now
   * stays down (a revert or a restore must not overrule the current health
   * verdict: "down" is state, not configuration; ./config-history.ts).
   */
  keepHealthDown?: boolean;
  /** Not recorded in the apply log as an import (a revert or a restore is logged by its apply). */
  quiet?: boolean;
}

export async function importFarms(db: PrismaClient, farms: Farm[], opts: ImportOptions = {}): Promise<ImportSummary> {
  const started = performance.now();
  const summary = await retryOnConflict(
    () => importOnce(db, farms, opts),
    async (e) => {
      const incoming = new Set(farms.map((f) => f.name));
      const taken = (await db.farm.findMany({ select: { name: true } })).map((r) => r.name).filter((n) => incoming.has(n));
      throw importConflict(e, taken);
    },
  );
  if (!opts.quiet) await logImport(db, summary, performance.now() - started);
  return summary;
}

function importWords(s: ImportSummary): string {
  const n = (k: string, xs: string[]) => (xs.length ? `${xs.length} ${k}` : "");
  const counts = [n("created", s.created), n("updated", s.updated), n("removed", s.removed)].filter(Boolean).join(", ");
  const names = [...s.created, ...s.updated, ...s.removed];
  return `import: ${counts}${names.length <= 5 ? ` (${names.join(", ")})` : ""}`;
}

/** The file's "up" backends that are down by health check now keep "down" (matched by farm and mark). */
function keepDown(farms: Farm[], rows: Awaited<ReturnType<typeof loadFarms>>): Farm[] {
  const down = new Set<string>();
  for (const r of rows) for (const b of r.backends) if (b.state === "down") down.add(`${r.name}/${b.mark}`);
  if (down.size === 0) return farms;
  return farms.map((f) => ({
    ...f,
    backends: f.backends.map((b) => (b.state === "up" && b.mark !== undefined && down.has(`${f.name}/${b.mark}`) ? { ...b, state: "down" as const } : b)),
  }));
}

async function importOnce(db: PrismaClient, farms: Farm[], opts: ImportOptions): Promise<ImportSummary> {
  const rows = await loadFarms(db);
  const incoming = new Set(farms.map((f) => f.name));
  const kept = rows.filter((r) => !incoming.has(r.name) && !opts.replace);
  const input = [...kept.map(rowToInput), ...farms];
  const parsed = FarmListSchema.safeParse(input);
  if (!parsed.success) throw invalidFarms(parsed.error, input);

  const known = new Map<string, number>();
  for (const r of rows) for (const b of r.backends) known.set(backendKey(r.name, b.ip, b.port), b.mark);
  const resolved = resolveMarks(opts.keepHealthDown ? keepDown(parsed.data, rows) : parsed.data, known);
  const byName = new Map(rows.map((r) => [r.name, r]));
  const summary: ImportSummary = { created: [], updated: [], removed: [], unchanged: [] };

  await farmWriteTransaction(db, async (tx) => {
    const history = opts.replace ? await readAllConfig(tx) : await readConfig(tx, [...incoming]);
    const wanted = new Set(resolved.map((f) => f.name));
    const removed = rows.filter((r) => !wanted.has(r.name));
    for (const batch of chunks(removed.map((r) => r.id), CHUNK)) await tx.farm.deleteMany({ where: { id: { in: batch } } });
    summary.removed = removed.map((r) => r.name);
    // Marks are unique across farms: free every changed farm's backends before creating any.
    const changed = resolved.filter((f) => {
      const row = byName.get(f.name);
      if (row && sameFarm(f, rowToResolved(row))) {
        summary.unchanged.push(f.name);
        return false;
      }
      (row ? summary.updated : summary.created).push(f.name);
      return true;
    });
    const changedIds = changed.map((f) => byName.get(f.name)?.id).filter((id): id is number => id !== undefined);
    for (const ids of chunks(changedIds, CHUNK)) await tx.backend.deleteMany({ where: { farmId: { in: ids } } });
    const data = farmColumns;
    const ids = new Map<string, number>();
    for (const f of changed) {
      const row = byName.get(f.name);
      if (row) {
        await tx.farm.update({ where: { id: row.id }, data: data(f) });
        ids.set(f.name, row.id);
      }
    }
    // Thousands of new farms: batched inserts, not one statement per row.
    for (const batch of chunks(changed.filter((f) => !byName.has(f.name)), CHUNK / 10)) {
      const created = await tx.farm.createManyAndReturn({ data: batch.map((f) => ({ name: f.name, ...data(f) })), select: { id: true, name: true } });
      for (const c of created) ids.set(c.name, c.id);
    }
    const backends = changed.flatMap((f) =>
      f.backends.map((b, position) => ({ farmId: ids.get(f.name)!, ...backendColumns(b, position) })),
    );
    for (const batch of chunks(backends, CHUNK / 10)) await tx.backend.createMany({ data: batch });
    await recordRevision(tx, history, opts.summary ?? importWords(summary), { all: opts.replace });
  });
  return summary;
}

/** The database's farms in the file format, marks included (so a re-import keeps them). */
export async function exportFarms(db: PrismaClient): Promise<{ farms: ReturnType<typeof toFileFarm>[] }> {
  const rows = await loadFarms(db);
  return { farms: rows.map((r) => toFileFarm(rowToResolved(r))) };
}
