import "server-only";
import { consoleEnv } from "./env.ts";
import { consoleDb } from "./db.ts";
import { driftOfFarm, driftOfFarms, type FarmDrift } from "./drift.ts";
import { createFarmService, type FarmService } from "./farm-service-core.ts";
import { rowToResolved, summarize, type FarmRow, type FarmSummary } from "./farm-model.ts";
import { cliLabDriver } from "./lab-driver-cli.ts";
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
    prepareTarget: t.kind === "lab" ? async () => void (await ensureLab(cliLabDriver, t)) : undefined,
  });
  globalForService.natfarmService = service;
  return service;
}

export interface FarmsOverview {
  farms: FarmSummary[];
  /** Why live state could not be read (target down, no privileges), if it could not. */
  liveError: string | null;
}

/** Every farm with its status; drift comes from one read of the target. */
export async function farmsOverview(): Promise<FarmsOverview> {
  const rows = await (await farmService()).listFarms();
  const { target } = consoleEnv();
  let drift: Map<string, FarmDrift> | null = null;
  let liveError: string | null = null;
  if (target.target && rows.length) {
    try {
      drift = await driftOfFarms(target.target, rows.map(rowToResolved));
    } catch (e) {
      liveError = (e as Error).message;
    }
  }
  return { farms: rows.map((r) => summarize(r, drift?.get(r.name))), liveError };
}

export interface FarmDetail {
  row: FarmRow;
  drift: FarmDrift | null;
  liveError: string | null;
}

export async function farmDetail(name: string): Promise<FarmDetail | null> {
  const row = await (await farmService()).getFarm(name);
  if (!row) return null;
  const { target } = consoleEnv();
  if (!target.target) return { row, drift: null, liveError: null };
  try {
    return { row, drift: await driftOfFarm(target.target, rowToResolved(row)), liveError: null };
  } catch (e) {
    return { row, drift: null, liveError: (e as Error).message };
  }
}
