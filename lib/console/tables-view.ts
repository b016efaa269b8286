import type { TablesChain, TablesSnapshot } from "../applier/tables.ts";

/**
 * What the live tables page shows of a snapshot: one farm's rules, or
 * natfarm's chains (or every chain), at most `limit` rules in all. Done on the
 * server: at 5,000 farms the whole snapshot is 50,000 rules and 12 MB of JSON,
 * of which the page shows 600 rules.
 */
export const TABLES_MAX_RULES = 600;

export interface TablesView {
  at: string;
  tables: { name: string; chains: TablesChain[] }[];
  /** Rules left out by the limit. */
  hidden: number;
  /** natfarm chains not read at all (the page reads only what it shows). */
  moreChains: number;
}

export function tablesView(snap: TablesSnapshot, opts: { farm?: string; scope?: "natfarm" | "all"; limit?: number } = {}): TablesView {
  const farm = opts.farm ?? "";
  const scope = opts.scope ?? "natfarm";
  let budget = opts.limit ?? TABLES_MAX_RULES;
  let hidden = 0;
  const tables = snap.tables.map((t) => ({
    name: t.name,
    chains: t.chains
      .map((c) => {
        let rules = c.rules.filter((r) => (farm ? r.farm === farm : scope === "all" || r.owned));
        if (!farm && scope === "natfarm" && !c.owned && rules.length === 0) return null;
        if (farm && rules.length === 0) return null;
        if (scope === "all" && !farm && !c.owned && c.rules.length === 0 && !c.policy) return null;
        if (rules.length > budget) {
          hidden += rules.length - budget;
          rules = rules.slice(0, budget);
        }
        budget -= rules.length;
        return { ...c, rules };
      })
      .filter((c): c is TablesChain => c !== null),
  }));
  return { at: snap.at, tables, hidden, moreChains: snap.unreadChains ?? 0 };
}
