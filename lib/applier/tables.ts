import { HOOKS, SHARD_ROLES, SHARD_TABLE, shardChain, shardOf, shardOfChain, TABLES, type Table } from "../netfilter/layout.ts";
import type { LiveChain, LiveRule } from "../netfilter/parse.ts";
import { chainKey } from "../netfilter/render.ts";
import type { Target } from "../privileged/target.ts";
import { HOOK_BUILTIN_KEYS, readChains, readFull } from "./read.ts";

/** The live mangle and nat tables with counters: natfarm's rules and everyone else's. */

/** A live rule as JSON carries it: the parser's rule, with absent farm and backend as null. */
export type TablesRule = Omit<LiveRule, "table" | "chain" | "farm" | "backend"> & { farm: string | null; backend: number | null };
export interface TablesChain {
  name: string;
  policy: string | null;
  owned: boolean;
  rules: TablesRule[];
}
export interface TablesSnapshot {
  at: string;
  tables: { name: string; chains: TablesChain[] }[];
  /** natfarm chains a partial read left out (readNatfarmTables). */
  unreadChains?: number;
}

function toChain(c: LiveChain): TablesChain {
  return {
    name: c.name,
    policy: c.builtin ? c.policy : null,
    owned: c.owned,
    rules: c.rules.map((r) => ({
      spec: r.spec,
      packets: r.packets,
      bytes: r.bytes,
      target: r.target,
      comment: r.comment,
      owned: r.owned,
      farm: r.farm ?? null,
      backend: r.backend ?? null,
    })),
  };
}

function snapshot(chains: Iterable<LiveChain>, unreadChains?: number): TablesSnapshot {
  const list = [...chains];
  return {
    at: new Date().toISOString(),
    tables: TABLES.map((name) => ({ name, chains: list.filter((c) => c.table === name).map(toChain) })),
    ...(unreadChains !== undefined ? { unreadChains } : {}),
  };
}

/** Every chain of both tables (one iptables-save per table). */
export async function readTables(target: Target, timeoutMs?: number): Promise<TablesSnapshot> {
  const live = await readFull(target, timeoutMs);
  return snapshot(TABLES.flatMap((name) => [...(live.tables?.get(name)?.chains.values() ?? [])]));
}

const ENTRY_KEYS = HOOKS.map((h) => chainKey(h.table, h.chain));
const SHARD_BATCH = 12;

/**
 * natfarm's part of the tables without reading the whole kernel (a second at
 * 5,000 farms): one farm's shard chains, or the hooks, the entry chains and
 * shards in order until about `maxRules` rules are read. Chains are listed
 * one by one (`iptables -S -v`), which stays fast however large the tables are.
 */
export async function readNatfarmTables(target: Target, opts: { farm?: string; maxRules?: number; timeoutMs?: number } = {}): Promise<TablesSnapshot> {
  const maxRules = opts.maxRules ?? 600;
  if (opts.farm) {
    const shard = shardOf(opts.farm);
    const view = await readChains(target, SHARD_ROLES.map((role) => chainKey(SHARD_TABLE[role], shardChain(role, shard))), opts.timeoutMs);
    return snapshot(view.owned.values());
  }
  const head = await readChains(target, [...HOOK_BUILTIN_KEYS, ...ENTRY_KEYS], opts.timeoutMs);
  const chains: LiveChain[] = [...head.builtins.values(), ...head.owned.values()];
  const shardKeys: string[] = [];
  for (const key of ENTRY_KEYS) {
    const entry = head.owned.get(key);
    const table = key.split(" ")[0] as Table;
    for (const r of entry?.rules ?? []) if (r.target && shardOfChain(r.target) !== null) shardKeys.push(chainKey(table, r.target));
  }
  let read = chains.reduce((n, c) => n + c.rules.length, 0);
  let next = 0;
  while (next < shardKeys.length && read < maxRules) {
    const batch = shardKeys.slice(next, next + SHARD_BATCH);
    next += batch.length;
    const view = await readChains(target, batch, opts.timeoutMs);
    for (const key of batch) {
      const c = view.owned.get(key);
      if (!c) continue;
      chains.push(c);
      read += c.rules.length;
    }
  }
  return snapshot(chains, shardKeys.length - next);
}
