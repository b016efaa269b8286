import { HOOK_BUILTIN_KEYS, readChains, readFull, type LiveView } from "../applier/read.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import { HOOKS, SHARD_TABLE, shardChain, shardOf, type ShardRole } from "../netfilter/layout.ts";
import { chainKey, renderFarm } from "../netfilter/render.ts";
import type { Target } from "../privileged/target.ts";

/**
 * Per-farm drift, cheaper than the applier's driftReport: a farm's wanted
 * rules are compared with the live rules that carry its comment, chain by
 * chain and in order (order matters: the last matching MARK rule wins). The
 * farms page reads the kernel once for every farm; the farm page reads only
 * the chains one farm can live in.
 */
export interface FarmDrift {
  inSync: boolean;
  /** `table chain spec` lines wanted but not live (in this order). */
  missing: string[];
  /** `table chain spec` lines live but not wanted. */
  unexpected: string[];
}

const ROLES: ShardRole[] = ["MARK", "DNAT", "SNAT"];

function lineOf(table: string, chain: string, spec: string): string {
  return `${table} ${chain} ${spec}`;
}

function wantedByChain(farm: ResolvedFarm): Map<string, string[]> {
  const r = renderFarm(farm);
  const out = new Map<string, string[]>();
  for (const l of r.rules) {
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
      const key = chainKey(r.table as "mangle" | "nat", r.chain);
      chains.set(key, [...(chains.get(key) ?? []), lineOf(r.table, r.chain, r.spec)]);
    }
  }
  return out;
}

function hooksPresent(view: LiveView): boolean {
  return HOOKS.every((h) => view.builtins.get(chainKey(h.table, h.builtin))?.rules.some((r) => r.target === h.chain));
}

/** Chains that some owned rule jumps to: a farm's shard chain must be one of them to see packets. */
function jumpTargets(view: LiveView): Set<string> {
  const out = new Set<string>();
  for (const chain of view.owned.values()) for (const r of chain.rules) if (r.target) out.add(chainKey(chain.table as "mangle" | "nat", r.target));
  return out;
}

export function compareFarm(farm: ResolvedFarm, live: Map<string, string[]> | undefined, hooksOk: boolean, jumps: Set<string>): FarmDrift {
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
    if (!jumps.has(key)) missing.push(`no jump into ${key}: packets never reach these rules`);
  }
  return { inSync: missing.length === 0 && unexpected.length === 0, missing, unexpected };
}

/** Drift of every farm, from one full read of the target. */
export async function driftOfFarms(target: Target, farms: readonly ResolvedFarm[]): Promise<Map<string, FarmDrift>> {
  return driftFromView(await readFull(target), farms);
}

/** The same from a full read already made (read it while the database loads). */
export function readLive(target: Target): Promise<LiveView> {
  return readFull(target);
}

export function driftFromView(view: LiveView, farms: readonly ResolvedFarm[]): Map<string, FarmDrift> {
  const live = liveByFarm(view);
  const hooksOk = hooksPresent(view);
  const jumps = jumpTargets(view);
  return new Map(farms.map((f) => [f.name, compareFarm(f, live.get(f.name), hooksOk, jumps)]));
}

/** Drift of one farm, reading only its shard chains, the entry chains and the hooked built-ins. */
export async function driftOfFarm(target: Target, farm: ResolvedFarm): Promise<FarmDrift> {
  const shard = shardOf(farm.name);
  const keys = new Set<string>(HOOK_BUILTIN_KEYS);
  for (const role of ROLES) keys.add(chainKey(SHARD_TABLE[role], shardChain(role, shard)));
  for (const h of HOOKS) keys.add(chainKey(h.table, h.chain));
  const view = await readChains(target, keys);
  return compareFarm(farm, liveByFarm(view).get(farm.name), hooksPresent(view), jumpTargets(view));
}
