import { TABLES } from "../netfilter/layout.ts";
import type { Target } from "../privileged/target.ts";
import type { LiveRule } from "../netfilter/parse.ts";
import { readFull } from "./read.ts";

/** The live mangle and nat tables, every chain, with counters: natfarm's rules and everyone else's. */
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
}

export async function readTables(target: Target, timeoutMs?: number): Promise<TablesSnapshot> {
  const live = await readFull(target, timeoutMs);
  return {
    at: new Date().toISOString(),
    tables: TABLES.map((name) => ({
      name,
      chains: [...(live.tables?.get(name)?.chains.values() ?? [])].map((c) => ({
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
      })),
    })),
  };
}
