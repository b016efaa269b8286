import { applyFarms as applyIptables, driftReport as driftIptables, type ApplyOptions } from "../../lib/applier/index.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import { engineFromEnv, type Engine } from "../../lib/kernel/engine.ts";
import { withEngine, type KernelApplyResult } from "../../lib/kernel/port.ts";
import type { Target } from "../../lib/privileged/target.ts";

/**
 * The engine matrix: NATFARM_TEST_ENGINE=nftables runs a suite's applies,
 * drift checks, counters and the health checker on the nftables engine
 * (vitest.config.ts runs chosen files a second time so); unset, on iptables
 * exactly as before (the applier itself, not the kernel port).
 */
export const TEST_ENGINE: Engine = engineFromEnv({ NATFARM_ENGINE: process.env.NATFARM_TEST_ENGINE });
export const testKernel = withEngine(directKernel, TEST_ENGINE);
/** For a child process (the health checker) that must use the same engine. */
export const engineEnv = { NATFARM_ENGINE: TEST_ENGINE };

export async function applyFarms(input: unknown, opts: Pick<ApplyOptions, "target" | "only" | "dryRun">): Promise<KernelApplyResult> {
  if (TEST_ENGINE === "iptables") return { ...(await applyIptables(input, opts)), engine: "iptables" };
  const r = await testKernel.applyFarms(input, opts);
  if (r.engine !== TEST_ENGINE) throw new Error(`applied on ${r.engine}, not on the test engine ${TEST_ENGINE}`);
  return r;
}

export function driftReport(input: unknown, opts: { target: Target }) {
  return TEST_ENGINE === "iptables" ? driftIptables(input, opts) : testKernel.driftReport(input, opts);
}

/** The packets natfarm's rules counted for a farm: its rules' counters on iptables, its backends' counters on nftables. */
export async function farmPackets(target: Target, farm: string): Promise<number> {
  const snap = await testKernel.readTables(target);
  let sum = 0;
  for (const t of snap.tables) {
    if (TEST_ENGINE === "iptables" && t.name !== "mangle") continue;
    for (const c of t.chains) for (const r of c.rules) if (r.farm === farm) sum += r.packets;
  }
  return sum;
}
