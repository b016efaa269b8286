import { resolveMarks } from "../farms/resolve.ts";
import { planChanges } from "../netfilter/plan.ts";
import { renderRuleset } from "../netfilter/render.ts";
import type { Target } from "../privileged/target.ts";
import { desiredPlanInput, marksInKernel, validateFarms } from "./apply.ts";
import { readFull } from "./read.ts";

/**
 * Desired vs live, per farm: which rules are missing from the kernel and which
 * are there without being wanted. `inSync` is the planner's verdict (it also
 * sees order and the skeleton); the per-farm lists say where the drift is.
 */
export interface FarmDrift {
  farm: string;
  status: "in-sync" | "missing" | "differs";
  missing: string[];
  unexpected: string[];
}

export interface DriftReport {
  inSync: boolean;
  farms: FarmDrift[];
  /** natfarm-owned rules that belong to no wanted farm (left over, or edited by hand). */
  stray: string[];
  /** The payload an apply would write now. */
  payload: string;
}

const line = (table: string, chain: string, spec: string) => `${table} ${chain} ${spec}`;

function subtract(a: string[], b: string[]): string[] {
  const pool = new Map<string, number>();
  for (const s of b) pool.set(s, (pool.get(s) ?? 0) + 1);
  return a.filter((s) => {
    const n = pool.get(s) ?? 0;
    if (n === 0) return true;
    pool.set(s, n - 1);
    return false;
  });
}

export async function driftReport(input: unknown, opts: { target: Target; timeoutMs?: number }): Promise<DriftReport> {
  const farms = validateFarms(input);
  const live = await readFull(opts.target, opts.timeoutMs);
  const resolved = resolveMarks(farms, marksInKernel(live.owned.values()));
  const desired = renderRuleset(resolved);
  const plan = planChanges(desiredPlanInput(desired, live));
  const liveByFarm = new Map<string, string[]>();
  const stray: string[] = [];
  const wanted = new Set(resolved.map((f) => f.name));
  for (const chain of live.owned.values()) {
    for (const r of chain.rules) {
      if (r.farm && wanted.has(r.farm)) {
        if (!liveByFarm.has(r.farm)) liveByFarm.set(r.farm, []);
        liveByFarm.get(r.farm)!.push(line(r.table, r.chain, r.spec));
      } else if (r.farm) stray.push(line(r.table, r.chain, r.spec));
    }
  }
  const report: FarmDrift[] = resolved.map((f) => {
    const rules = desired.farms.get(f.name);
    const want = rules ? rules.rules.map((l) => line(l.table, l.chain, l.spec)) : [];
    const have = liveByFarm.get(f.name) ?? [];
    const missing = subtract(want, have);
    const unexpected = subtract(have, want);
    const status = missing.length === 0 && unexpected.length === 0 ? "in-sync" : have.length === 0 ? "missing" : "differs";
    return { farm: f.name, status, missing, unexpected };
  });
  return { inSync: plan.empty, farms: report, stray, payload: plan.payload };
}
