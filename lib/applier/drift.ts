import { resolveMarks } from "../farms/resolve.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import { HOOKS, type Table } from "../netfilter/layout.ts";
import { planChanges } from "../netfilter/plan.ts";
import { chainKey, renderFarm, renderRuleset } from "../netfilter/render.ts";
import type { Target } from "../privileged/target.ts";
import { desiredPlanInput, marksInKernel, validateFarms } from "./apply.ts";
import { HOOK_BUILTIN_KEYS, readChains, readFull, type LiveView } from "./read.ts";
import { readScoped } from "./scoped.ts";

/**
 * Desired vs live, per farm: a farm's wanted rules are compared with the live
 * rules that carry its comment, chain by chain and in order (the last
 * matching MARK rule wins, so the same rules in another order are drift), and
 * a farm whose rules no path from the entry chains reaches is drifted too. The console shows this
 * per farm; `driftReport` adds the planner's verdict for the whole target.
 */
export interface FarmRuleDrift {
  inSync: boolean;
  /** `table chain spec` lines wanted but not live (in this order), or what keeps packets from them. */
  missing: string[];
  /** `table chain spec` lines live but not wanted. */
  unexpected: string[];
}

const lineOf = (table: string, chain: string, spec: string) => `${table} ${chain} ${spec}`;

function wantedByChain(farm: ResolvedFarm): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const l of renderFarm(farm).rules) {
    const key = chainKey(l.table, l.chain);
    out.set(key, [...(out.get(key) ?? []), lineOf(l.table, l.chain, l.spec)]);
  }
  return out;
}

function liveByFarm(view: LiveView): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const chain of view.owned.values()) {
    for (const r of chain.rules) {
      if (!r.farm) continue;
      let chains = out.get(r.farm);
      if (!chains) out.set(r.farm, (chains = new Map()));
      const key = chainKey(r.table as Table, r.chain);
      chains.set(key, [...(chains.get(key) ?? []), lineOf(r.table, r.chain, r.spec)]);
    }
  }
  return out;
}

function hooksPresent(view: LiveView): boolean {
  return HOOKS.every((h) => view.builtins.get(chainKey(h.table, h.builtin))?.rules.some((r) => r.target === h.chain));
}

/** Owned chains packets can reach: from the entry chains, jump by jump, through the chains read. */
function reachable(view: LiveView): Set<string> {
  const out = new Set<string>();
  const queue = HOOKS.map((h) => chainKey(h.table, h.chain)).filter((k) => view.owned.has(k));
  for (const k of queue) out.add(k);
  while (queue.length) {
    const key = queue.pop()!;
    const chain = view.owned.get(key)!;
    for (const r of chain.rules) {
      if (!r.target) continue;
      const next = chainKey(chain.table as Table, r.target);
      if (!out.has(next) && view.owned.has(next)) {
        out.add(next);
        queue.push(next);
      }
    }
  }
  return out;
}

function compareFarm(farm: ResolvedFarm, live: Map<string, string[]> | undefined, hooksOk: boolean, jumps: Set<string>): FarmRuleDrift {
  const want = wantedByChain(farm);
  const have = live ?? new Map<string, string[]>();
  const missing: string[] = [];
  const unexpected: string[] = [];
  for (const key of new Set([...want.keys(), ...have.keys()])) {
    const w = want.get(key) ?? [];
    const h = have.get(key) ?? [];
    if (w.length === h.length && w.every((line, i) => line === h[i])) continue;
    const hs = new Set(h);
    const ws = new Set(w);
    const gone = w.filter((line) => !hs.has(line));
    const extra = h.filter((line) => !ws.has(line));
    if (gone.length === 0 && extra.length === 0) {
      // Same rules in another order: the probabilities no longer give the weights.
      missing.push(...w);
      unexpected.push(...h);
    } else {
      missing.push(...gone);
      unexpected.push(...extra);
    }
  }
  if (farm.status === "up" && !hooksOk) missing.push("natfarm's jump from a built-in chain is missing: no packet reaches the farm's rules");
  for (const key of want.keys()) {
    if (!jumps.has(key)) missing.push(`no path from natfarm's entry chains into ${key}: packets never reach these rules`);
  }
  return { inSync: missing.length === 0 && unexpected.length === 0, missing, unexpected };
}

/** Drift of every farm from one full read of the target. */
export function driftFromView(view: LiveView, farms: readonly ResolvedFarm[]): Map<string, FarmRuleDrift> {
  const live = liveByFarm(view);
  const hooksOk = hooksPresent(view);
  const jumps = reachable(view);
  return new Map(farms.map((f) => [f.name, compareFarm(f, live.get(f.name), hooksOk, jumps)]));
}

/** Drift of one farm, reading only the chains on its paths (its chain, its mark blocks and the nodes above them), the entry chains and the hooked built-ins. */
export async function driftOfFarm(target: Target, farm: ResolvedFarm): Promise<FarmRuleDrift> {
  const paths = await readScoped(target, [farm], new Set([farm.name]), 30_000);
  const keys = new Set<string>([...HOOK_BUILTIN_KEYS, ...HOOKS.map((h) => chainKey(h.table, h.chain)), ...wantedByChain(farm).keys()]);
  const view = await readChains(target, keys);
  for (const [k, c] of paths?.owned ?? []) view.owned.set(k, c);
  return compareFarm(farm, liveByFarm(view).get(farm.name), hooksPresent(view), reachable(view));
}

export interface FarmDrift extends FarmRuleDrift {
  farm: string;
  status: "in-sync" | "missing" | "differs";
}

export interface DriftReport {
  /** The planner's verdict: applying now would write nothing. */
  inSync: boolean;
  farms: FarmDrift[];
  /** natfarm-owned rules of farms that are not wanted (left over, or added by hand). */
  stray: string[];
  /** The payload an apply would write now. */
  payload: string;
}

export async function driftReport(input: unknown, opts: { target: Target; timeoutMs?: number }): Promise<DriftReport> {
  const farms = validateFarms(input);
  const live = await readFull(opts.target, opts.timeoutMs);
  const resolved = resolveMarks(farms, marksInKernel(live.owned.values()));
  const plan = planChanges(desiredPlanInput(renderRuleset(resolved), live));
  const byFarm = driftFromView(live, resolved);
  const held = liveByFarm(live);
  const wanted = new Set(resolved.map((f) => f.name));
  const stray = [...held].filter(([farm]) => !wanted.has(farm)).flatMap(([, chains]) => [...chains.values()].flat());
  const report = resolved.map((f): FarmDrift => {
    const d = byFarm.get(f.name)!;
    return { farm: f.name, status: d.inSync ? "in-sync" : held.has(f.name) ? "differs" : "missing", ...d };
  });
  return { inSync: plan.empty, farms: report, stray, payload: plan.payload };
}
