import type { Farm } from "../farms/schema.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { FarmRow } from "./farm-rows.ts";
import { readConfig, recordRevisionOf, snapshotLater } from "./config-history.ts";
import { farmWriteTransaction } from "../db/write-lock.ts";

/**
 * The farms' rows in SQLite through Prisma: what the service, the import, the
 * checker and the pages read, and the one way a farm is written.
 */
export const WITH_BACKENDS = { backends: { orderBy: { position: "asc" } } } as const;

/**
 * Two plain queries joined here: an `include` would bind one parameter per
 * farm, past SQLite's limit at a few thousand farms.
 */
export async function loadFarms(db: PrismaClient): Promise<FarmRow[]> {
  const [farms, backends] = await Promise.all([
    db.farm.findMany({ orderBy: { name: "asc" } }),
    db.backend.findMany({ orderBy: [{ farmId: "asc" }, { position: "asc" }] }),
  ]);
  const byFarm = new Map<number, FarmRow["backends"]>();
  for (const b of backends) {
    let list = byFarm.get(b.farmId);
    if (!list) byFarm.set(b.farmId, (list = []));
    list.push(b);
  }
  return farms.map((f) => ({ ...f, backends: byFarm.get(f.id) ?? [] }));
}

/** One line per farm with backend counts: what the farms table needs, in one query (fast at 5,000 farms). */
export type FarmCountsRow = Pick<FarmRow, "name" | "vip" | "ports" | "protocol" | "mode" | "status" | "applyState" | "applyError"> & {
  backends: number;
  backendsUp: number;
};

export async function loadFarmCounts(db: PrismaClient): Promise<FarmCountsRow[]> {
  // SQL both SQLite and PostgreSQL read alike: quoted camelCase names (PostgreSQL folds bare ones to lower case), no boolean SUM.
  const rows = await db.$queryRaw<FarmCountsRow[]>`
    SELECT f.name, f.vip, f.ports, f.protocol, f.mode, f.status, f."applyState", f."applyError",
           COUNT(b.id) AS backends, COALESCE(SUM(CASE WHEN b.state = 'up' THEN 1 ELSE 0 END), 0) AS "backendsUp"
    FROM "Farm" f LEFT JOIN "Backend" b ON b."farmId" = f.id
    GROUP BY f.id ORDER BY f.name`;
  // Aggregates may come back as bigint (SQLite) or as int8 text (PostgreSQL).
  return rows.map((r) => ({ ...r, backends: Number(r.backends), backendsUp: Number(r.backendsUp) }));
}

export async function loadFarm(db: PrismaClient, name: string): Promise<FarmRow | null> {
  return (await db.farm.findUnique({ where: { name }, include: WITH_BACKENDS })) as FarmRow | null;
}

export async function loadFarmNames(db: PrismaClient): Promise<string[]> {
  return (await db.farm.findMany({ select: { name: true }, orderBy: { name: "asc" } })).map((f) => f.name);
}

/** The farm's own columns as the database stores them (the health check as JSON text); a written farm is pending until applied. */
export function farmColumns(farm: Farm) {
  return {
    vip: farm.vip,
    ports: farm.ports,
    protocol: farm.protocol,
    mode: farm.mode,
    status: farm.status,
    scheduler: farm.scheduler,
    persistence: farm.persistence,
    persistenceTtl: farm.persistenceTtl,
    healthcheck: farm.healthcheck ? JSON.stringify(farm.healthcheck) : null,
    applyState: "pending",
    applyError: null,
  };
}

export function backendColumns(b: Farm["backends"][number], position: number) {
  return { position, ip: b.ip, port: b.port, weight: b.weight, mark: b.mark!, state: b.state, priority: b.priority };
}

/**
 * Writes one farm in one transaction. Backends are matched by mark (the
 * kernel's identity of a backend) and updated in place, so what others keep
 * on a backend row (its id, the health checker's last probe) survives an edit;
 * positions are the renderer's indexes and are renumbered 0..n-1.
 * The configuration revision (`summary`: what the history calls it) is
 * written in the same transaction (./config-history.ts).
 */
export async function writeFarm(db: PrismaClient, farm: Farm, existingId: number | null, summary = `farm ${farm.name}: ${existingId === null ? "create" : "update"}`): Promise<void> {
  const columns = farmColumns(farm);
  const backends = farm.backends.map((b, position) => backendColumns(b, position));
  const revision = await farmWriteTransaction(db, async (tx) => {
    const before = await readConfig(tx, [farm.name]);
    await writeFarmRows(tx, farm.name, columns, backends, existingId);
    return recordRevisionOf(tx, before, summary, { snapshotLater: true });
  });
  if (revision?.snapshotDue) snapshotLater(db, revision.id);
}

async function writeFarmRows(
  tx: Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0],
  name: string,
  columns: ReturnType<typeof farmColumns>,
  backends: ReturnType<typeof backendColumns>[],
  existingId: number | null,
): Promise<void> {
  {
    if (existingId === null) {
      await tx.farm.create({ data: { name, ...columns, backends: { create: backends } } });
      return;
    }
    await tx.farm.update({ where: { id: existingId }, data: columns });
    const before = await tx.backend.findMany({ where: { farmId: existingId } });
    const wanted = new Map(backends.map((b) => [b.mark, b]));
    const gone = before.filter((b) => !wanted.has(b.mark)).map((b) => b.id);
    if (gone.length) await tx.backend.deleteMany({ where: { id: { in: gone } } });
    const kept = before.filter((b) => wanted.has(b.mark));
    const differs = (b: (typeof before)[number]) => {
      const w = wanted.get(b.mark)!;
      return (Object.keys(w) as (keyof typeof w)[]).some((k) => (b as Record<string, unknown>)[k] !== w[k]);
    };
    const changed = kept.filter(differs);
    // (farm, position) and (farm, ip, port) are unique and two backends may swap:
    // when a position or an address moves, everything moves out of the way first.
    const moves = changed.some((b) => {
      const w = wanted.get(b.mark)!;
      return w.position !== b.position || w.ip !== b.ip || w.port !== b.port;
    });
    if (moves) for (const [i, b] of changed.entries()) await tx.backend.update({ where: { id: b.id }, data: { position: -1 - i, ip: `~${b.mark}` } });
    for (const b of changed) await tx.backend.update({ where: { id: b.id }, data: wanted.get(b.mark)! });
    const known = new Set(kept.map((b) => b.mark));
    const fresh = backends.filter((b) => !known.has(b.mark));
    if (fresh.length) await tx.backend.createMany({ data: fresh.map((b) => ({ ...b, farmId: existingId })) });
  }
}

export function loadApplyLog(db: PrismaClient, limit: number) {
  return db.applyLog.findMany({ orderBy: { id: "desc" }, take: limit });
}

export function loadHealthEvents(db: PrismaClient, opts: { farm?: string; limit?: number }) {
  return db.healthEvent.findMany({ where: opts.farm ? { farm: opts.farm } : {}, orderBy: { id: "desc" }, take: opts.limit ?? 50 });
}

/** Deletes farms (their backends go with them) and records the revision, in one transaction. */
export async function deleteFarms(db: PrismaClient, names: string[], summary: string): Promise<void> {
  const revision = await farmWriteTransaction(db, async (tx) => {
    const before = await readConfig(tx, names);
    await tx.farm.deleteMany({ where: { name: { in: names } } });
    return recordRevisionOf(tx, before, summary, { snapshotLater: true });
  });
  if (revision?.snapshotDue) snapshotLater(db, revision.id);
}
