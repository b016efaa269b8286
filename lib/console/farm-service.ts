import "server-only";
import { createDriftView, type DriftOverview, type FarmDetail } from "../service/drift.ts";
import { createFarmService, type FarmService } from "../service/farm-service.ts";
import type { FarmRow } from "../service/farm-rows.ts";
import { kernelReach, type KernelReach } from "../service/kernel-reach.ts";
import { ensureLab } from "../service/lab.ts";
import { consoleDb } from "./db.ts";
import { consoleEnv } from "./env.ts";
import { packSummaries, summarizeCounts, type PackedSummaries } from "./farm-model.ts";

export type { DriftOverview, FarmDetail } from "../service/drift.ts";

/**
 * The console's one farm service, bound to the configured database, target
 * and kernel port (the agent, for the unprivileged console). Pages, route
 * handlers and server actions go through here; the use cases live in
 * lib/service.
 */
interface ConsoleService {
  service: FarmService;
  drift: ReturnType<typeof createDriftView>;
}

// Kept on globalThis: Next's dev server re-evaluates modules, and two services would not share one queue or cache.
const globalForService = globalThis as unknown as { natfarmConsole?: Promise<ConsoleService>; natfarmConsoleReady?: ConsoleService };

function consoleService(): Promise<ConsoleService> {
  return (globalForService.natfarmConsole ??= (async () => {
    const env = consoleEnv();
    const t = env.target;
    const service = createFarmService({
      db: await consoleDb(),
      target: t.target,
      faultFile: env.faultFile,
      prepareTarget: t.kind === "lab" ? async () => void (await ensureLab(t)) : undefined,
    });
    const drift = createDriftView({ kernel: service.kernel, target: t.target, rows: () => service.listFarms() });
    return (globalForService.natfarmConsoleReady = { service, drift });
  })().catch((e) => {
    globalForService.natfarmConsole = undefined;
    throw e;
  }));
}

export async function farmService(): Promise<FarmService> {
  return (await consoleService()).service;
}

/**
 * Every farm with its status as the database sees it. Drift needs a read of
 * the whole kernel (a second or more at 5,000 farms), so the table gets it
 * separately from /api/drift and the list never waits for the kernel.
 */
export async function farmsOverview(): Promise<{ farms: PackedSummaries }> {
  const service = await farmService();
  const [rows, addresses] = await Promise.all([service.listFarmCounts(), service.listBackendAddresses()]);
  return { farms: packSummaries(rows.map((r) => summarizeCounts(r, addresses.get(r.name) ?? ""))) };
}

export async function driftOverview(): Promise<DriftOverview> {
  return (await consoleService()).drift.overview();
}

/** The farms or the kernel just changed: the next overview compares again. */
export function forgetDrift(): void {
  globalForService.natfarmConsoleReady?.drift.forget();
}

export async function farmDetail(name: string): Promise<FarmDetail | null> {
  const row = await (await farmService()).getFarm(name);
  return row ? farmDetailOf(row) : null;
}

export async function farmDetailOf(row: FarmRow): Promise<FarmDetail> {
  return (await consoleService()).drift.ofFarm(row);
}

/** Whether the agent answers now: the header's banner. */
export async function agentReach(): Promise<KernelReach> {
  const { service } = await consoleService();
  return kernelReach(service.kernel, service.target);
}
