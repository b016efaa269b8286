import { HOOKS, isOwnedChain, TABLES, type Table } from "../netfilter/layout.ts";
import type { LiveChain, LiveRule } from "../netfilter/parse.ts";
import { chainKey } from "../netfilter/render.ts";
import type { Target } from "../privileged/target.ts";
import { HOOK_BUILTIN_KEYS, readChains, readFull } from "./read.ts";
import { readScoped } from "./scoped.ts";

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
const BATCH = 12;

/**
 * natfarm's part of the tables without reading the whole kernel (a second at
 * 5,000 farms): one farm's chains (its own chain, the mark blocks holding its
 * translations and the dispatch nodes on its paths), or the hooks, the entry
 * chains and then the trees breadth first until about `maxRules` rules are
 * read. Chains are listed one by one (`iptables -S -v`), which stays fast
 * however large the tables are.
 */
export async function readNatfarmTables(target: Target, opts: { farm?: string; maxRules?: number; timeoutMs?: number } = {}): Promise<TablesSnapshot> {
  const maxRules = opts.maxRules ?? 600;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (opts.farm) {
    const view = await readScoped(target, [], new Set([opts.farm]), timeoutMs);
    return snapshot(view?.owned.values() ?? []);
  }
  const head = await readChains(target, [...HOOK_BUILTIN_KEYS, ...ENTRY_KEYS], timeoutMs);
  const chains: LiveChain[] = [...head.builtins.values(), ...head.owned.values()];
  const seen = new Set<string>(ENTRY_KEYS);
  const queue: string[] = [];
  const follow = (c: LiveChain) => {
    for (const r of c.rules) {
      if (!r.target || !isOwnedChain(r.target)) continue;
      const key = chainKey(c.table as Table, r.target);
      if (!seen.has(key)) {
        seen.add(key);
        queue.push(key);
      }
    }
  };
  for (const c of head.owned.values()) follow(c);
  let read = chains.reduce((n, c) => n + c.rules.length, 0);
  while (queue.length && read < maxRules) {
    const batch = queue.splice(0, BATCH);
    const view = await readChains(target, batch, timeoutMs);
    for (const key of batch) {
      const c = view.owned.get(key);
      if (!c) continue;
      chains.push(c);
      follow(c);
      read += c.rules.length;
    }
  }
  return snapshot(chains, queue.length);
}
