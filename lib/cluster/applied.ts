import { createHash } from "node:crypto";
import type { ResolvedFarm } from "../farms/schema.ts";
import { renderFarm } from "../netfilter/render.ts";

/**
 * "Which configuration does each node run": a version of the farm set a
 * node's kernel holds, read back from the kernel itself (not from what a
 * node says it applied), comparable with the version of the desired set.
 *
 * Both sides are reduced to the same lines — `table chain spec` of the rules
 * carrying a farm's comment, as the drift check compares them — so a node
 * whose rules are exactly the desired ones has exactly the desired version,
 * and the per-farm hashes name the farms that differ. Marks are part of the
 * rules: two nodes with the same farms but different marks would not carry a
 * synced connection to the same backend, and get different versions.
 */
export type FarmHashes = Record<string, string>;

interface RuleLine {
  table: string;
  chain: string;
  spec: string;
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

/** One farm's lines, chains in a fixed order and rules in kernel order within each (order matters: the last MARK wins). */
function hashRules(rules: readonly RuleLine[]): string {
  const byChain = new Map<string, string[]>();
  for (const r of rules) {
    const key = `${r.table} ${r.chain}`;
    byChain.set(key, [...(byChain.get(key) ?? []), `${key} ${r.spec}`]);
  }
  return sha([...byChain.keys()].sort().flatMap((k) => byChain.get(k)!).join("\n"));
}

/** One farm's hash as its rendered rules give it; null for a farm with no rules (stopped): in the kernel it is absent. */
export function desiredFarmHash(f: ResolvedFarm): string | null {
  const rules = renderFarm(f).rules;
  return rules.length ? hashRules(rules) : null;
}

export function desiredFarmHashes(farms: readonly ResolvedFarm[]): FarmHashes {
  const out: FarmHashes = {};
  for (const f of farms) {
    const h = desiredFarmHash(f);
    if (h !== null) out[f.name] = h;
  }
  return out;
}

/** From the owned rules read back from a kernel (each with the farm its comment names). */
export function liveFarmHashes(rules: Iterable<RuleLine & { farm?: string | null }>): FarmHashes {
  const byFarm = new Map<string, RuleLine[]>();
  for (const r of rules) {
    if (!r.farm) continue;
    byFarm.set(r.farm, [...(byFarm.get(r.farm) ?? []), r]);
  }
  return Object.fromEntries([...byFarm].map(([farm, list]) => [farm, hashRules(list)]));
}

/** The version of a whole set: equal sets, equal versions, whatever order the farms came in. */
export function setVersion(hashes: FarmHashes): string {
  return sha(
    Object.keys(hashes)
      .sort()
      .map((f) => `${f} ${hashes[f]}`)
      .join("\n"),
  );
}

export interface AppliedComparison {
  matches: boolean;
  /** Desired farms the node's kernel has no rules for. */
  missing: string[];
  /** Farms whose rules differ (weights, backends, marks, mode...). */
  differs: string[];
  /** Farms the node's kernel has rules for that the desired set does not have. */
  extra: string[];
}

export function compareApplied(desired: FarmHashes, live: FarmHashes): AppliedComparison {
  const missing = Object.keys(desired).filter((f) => !(f in live)).sort();
  const differs = Object.keys(desired).filter((f) => f in live && live[f] !== desired[f]).sort();
  const extra = Object.keys(live).filter((f) => !(f in desired)).sort();
  return { matches: missing.length + differs.length + extra.length === 0, missing, differs, extra };
}
