import "server-only";
import { consoleEnv } from "./env.ts";
import { consoleDb } from "./db.ts";
import { driftFromView, driftOfFarm, type FarmRuleDrift as FarmDrift } from "../applier/drift.ts";
import { readFull as readLive } from "../applier/read.ts";
import { createFarmService, type FarmService } from "./farm-service-core.ts";
import { packSummaries, rowToResolved, summarizeCounts, type FarmRow, type PackedSummaries } from "./farm-model.ts";
import { ensureLab } from "./lab-service.ts";

/**
 * The console's one farm service, bound to the configured database and
 * target. Pages and server actions go through here; the lifecycle logic
 * itself lives in farm-service-core.ts.
 */
const globalForService = globalThis as unknown as { natfarmService?: FarmService };

export async function farmService(): Promise<FarmService> {
  if (globalForService.natfarmService) return globalForService.natfarmService;
  const env = consoleEnv();
  const t = env.target;
  const service = createFarmService({
    db: await consoleDb(),
    target: t.target,
    faultFile: env.faultFile,
    prepareTarget: t.kind === "lab" ? async () => void (await ensureLab(t)) : undefined,
  });
  globalForService.natfarmService = service;
  return service;
}

/**
 * Every farm with its status as the database sees it. Drift needs a read of
 * the whole kernel (a second or more at 5,000 farms), so the table gets it
 * separately from /api/drift and the list never waits for the kernel.
 */
export async function farmsOverview(): Promise<{ farms: PackedSummaries }> {
  const rows = await (await farmService()).listFarmCounts();
  return { farms: packSummaries(rows.map(summarizeCounts)) };
}

export interface DriftOverview {
  /** Farms whose live rules differ from what natfarm wrote. */
  drift: string[];
  liveError: string | null;
}

// Comparing 5,000 farms with the kernel takes the server a second or more of
// CPU: every open farms table shares one comparison, and reuses it briefly.
const DRIFT_TTL_MS = 5_000;
let driftCache: { at: number; value: Promise<DriftOverview> } | null = null;

export function driftOverview(): Promise<DriftOverview> {
  const now = Date.now();
  if (driftCache && now - driftCache.at < DRIFT_TTL_MS) return driftCache.value;
  const value = computeDrift();
  driftCache = { at: now, value };
  value.then(
    () => driftCache?.value === value && (driftCache.at = Date.now()),
    () => driftCache?.value === value && (driftCache = null),
  );
  return value;
}

/** Drops the cached comparison: the farms or the kernel just changed. */
export function forgetDrift(): void {
  driftCache = null;
}

/** One read of the target, made while the database loads, compared farm by farm. */
async function computeDrift(): Promise<DriftOverview> {
  const { target } = consoleEnv();
  if (!target.target) return { drift: [], liveError: null };
  const live = readLive(target.target).then((view) => ({ view }), (e: Error) => ({ error: e.message }));
  const rows = await (await farmService()).listFarms();
  const read = await live;
  if ("error" in read) return { drift: [], liveError: rows.length ? read.error : null };
  const drift = driftFromView(read.view, rows.map(rowToResolved));
  return { drift: rows.filter((r) => r.applyState === "applied" && drift.get(r.name)?.inSync === false).map((r) => r.name), liveError: null };
}

export interface FarmDetail {
  row: FarmRow;
  drift: FarmDrift | null;
  liveError: string | null;
}

export async function farmDetail(name: string): Promise<FarmDetail | null> {
  const row = await (await farmService()).getFarm(name);
  return row ? farmDetailOf(row) : null;
}

/** The farm's row with its drift against the kernel (the slow part: a read of the farm's shard). */
export async function farmDetailOf(row: FarmRow): Promise<FarmDetail> {
  const { target } = consoleEnv();
  if (!target.target) return { row, drift: null, liveError: null };
  try {
    return { row, drift: await driftOfFarm(target.target, rowToResolved(row)), liveError: null };
  } catch (e) {
    return { row, drift: null, liveError: (e as Error).message };
  }
}
