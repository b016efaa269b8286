import type { FarmRuleDrift } from "../applier/drift.ts";
import type { KernelPort } from "../kernel/index.ts";
import type { Target } from "../privileged/target.ts";
import { isAgentDown } from "./errors.ts";
import { rowToResolved, type FarmRow } from "./farm-rows.ts";

/**
 * Whether the kernel still holds what natfarm wrote, farm by farm, asked of
 * the kernel port (the agent compares; the console never reads the kernel
 * itself). A read that fails leaves statuses to the database alone and says
 * why; the agent being down is flagged so the pages show their banner.
 */
export interface DriftOverview {
  /** Farms marked applied whose live rules differ from what natfarm wrote. */
  drift: string[];
  liveError: string | null;
  agentUnavailable?: boolean;
}

export interface FarmDetail {
  row: FarmRow;
  drift: FarmRuleDrift | null;
  liveError: string | null;
  agentUnavailable?: boolean;
}

// Comparing 5,000 farms with the kernel takes a second or more of CPU: every
// open farms table shares one comparison, and reuses it briefly.
const DRIFT_TTL_MS = 5_000;

export function createDriftView(deps: { kernel: KernelPort; target: Target | null; rows: () => Promise<FarmRow[]> }) {
  let cache: { at: number; value: Promise<DriftOverview> } | null = null;

  async function compute(): Promise<DriftOverview> {
    const { target } = deps;
    if (!target) return { drift: [], liveError: null };
    const rows = await deps.rows();
    if (rows.length === 0) return { drift: [], liveError: null };
    try {
      const drift = await deps.kernel.driftOfFarms(target, rows.map(rowToResolved));
      return { drift: rows.filter((r) => r.applyState === "applied" && drift.get(r.name)?.inSync === false).map((r) => r.name), liveError: null, agentUnavailable: false };
    } catch (e) {
      return { drift: [], liveError: (e as Error).message, ...(isAgentDown(e) ? { agentUnavailable: true } : {}) };
    }
  }

  return {
    overview(): Promise<DriftOverview> {
      const now = Date.now();
      if (cache && now - cache.at < DRIFT_TTL_MS) return cache.value;
      const value = compute();
      const entry = { at: now, value };
      cache = entry;
      // A comparison that found the agent down is not kept: the banner must go as soon as it is back.
      value.then(
        (v) => cache === entry && (v.agentUnavailable ? (cache = null) : (entry.at = Date.now())),
        () => cache === entry && (cache = null),
      );
      return value;
    },

    /** The farms or the kernel just changed. */
    forget(): void {
      cache = null;
    },

    /** The farm's row with its drift (the slow part: a read of the farm's shard). */
    async ofFarm(row: FarmRow): Promise<FarmDetail> {
      if (!deps.target) return { row, drift: null, liveError: null };
      try {
        return { row, drift: await deps.kernel.driftOfFarm(deps.target, rowToResolved(row)), liveError: null };
      } catch (e) {
        return { row, drift: null, liveError: (e as Error).message, ...(isAgentDown(e) ? { agentUnavailable: true } : {}) };
      }
    },
  };
}
