import type { FarmInput } from "../farms/schema.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { rowToInput, type FarmRow } from "./farm-rows.ts";
import { loadFarms, WITH_BACKENDS } from "./store.ts";

/**
 * The farm set as the database holds it, kept in memory between mutations:
 * at 5,000 farms reading every row costs a quarter of a second, more than a
 * whole one-farm change may take. Each use re-reads only the farms written
 * since the last one (by anyone: the health checker and the CLI write the same
 * database), found by their update time with a margin for writes still
 * committing; counts that do not add up mean a full reload. Unchanged farms
 * keep their input objects, so the set validation and the applier's own
 * skip them.
 */
const RECENT_MARGIN_MS = 2_000;
/** Past this many changed farms one full read is cheaper than fetching them by id. */
const FULL_RELOAD_AFTER = 200;

export type FarmSetCache = ReturnType<typeof createFarmSetCache>;

export function createFarmSetCache(db: PrismaClient) {
  let byId = new Map<number, FarmRow>();
  const inputs = new WeakMap<FarmRow, FarmInput>();
  let since: { farms: Date | null; backends: Date | null } | null = null;
  let sorted: FarmRow[] | null = null;

  const aggregates = () =>
    db.$transaction([
      db.farm.aggregate({ _count: { _all: true }, _max: { updatedAt: true } }),
      db.backend.aggregate({ _count: { _all: true }, _max: { updatedAt: true } }),
    ]);

  async function full(): Promise<FarmRow[]> {
    const [f, b] = await aggregates();
    const rows = await loadFarms(db);
    byId = new Map(rows.map((r) => [r.id, r]));
    since = { farms: f._max.updatedAt, backends: b._max.updatedAt };
    sorted = rows;
    return rows;
  }

  async function rows(): Promise<FarmRow[]> {
    if (!since) return full();
    const margin = (d: Date | null) => new Date((d?.getTime() ?? 0) - RECENT_MARGIN_MS);
    const [[f, b], farms, backends] = await Promise.all([
      aggregates(),
      db.farm.findMany({ where: { updatedAt: { gte: margin(since.farms) } }, select: { id: true } }),
      db.backend.findMany({ where: { updatedAt: { gte: margin(since.backends) } }, select: { farmId: true }, distinct: ["farmId"] }),
    ]);
    const ids = [...new Set([...farms.map((x) => x.id), ...backends.map((x) => x.farmId)])];
    if (ids.length > FULL_RELOAD_AFTER) return full();
    if (ids.length) {
      const fresh = (await db.farm.findMany({ where: { id: { in: ids } }, include: WITH_BACKENDS })) as FarmRow[];
      const found = new Set(fresh.map((r) => r.id));
      for (const id of ids) if (!found.has(id)) byId.delete(id);
      for (const r of fresh) byId.set(r.id, r);
      sorted = null;
    }
    let backendCount = 0;
    for (const r of byId.values()) backendCount += r.backends.length;
    // A farm or backend deleted without a trace in the update times: start over.
    if (byId.size !== f._count._all || backendCount !== b._count._all) return full();
    since = { farms: f._max.updatedAt, backends: b._max.updatedAt };
    sorted ??= [...byId.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return sorted;
  }

  return {
    rows,
    /** The row as the schema's input, the same object for as long as the row is unchanged. */
    input(row: FarmRow): FarmInput {
      let i = inputs.get(row);
      if (!i) inputs.set(row, (i = rowToInput(row)));
      return i;
    },
    forget() {
      since = null;
    },
  };
}
