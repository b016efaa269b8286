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

/**
 * The Live tables page's own view (GET /api/tables): every chain it lists
 * says how many rules it holds (`total`), so a chain cut by the limit reads
 * "… 1,234 more rules" where it is cut instead of looking empty; counters
 * can sort the rules (and the chains, busiest first) and rules that never
 * matched can be left out. `chain` ("<table> <chain>") expands one chain:
 * only it, up to EXPAND_MAX_RULES.
 */
export const EXPAND_MAX_RULES = 5_000;
export const TABLE_SORTS = ["rule", "packets", "bytes"] as const;
export type TableSort = (typeof TABLE_SORTS)[number];

export type LiveTablesChain = TablesChain & { total: number };
export interface LiveTablesView {
  at: string;
  tables: { name: string; chains: LiveTablesChain[] }[];
  /** Rules left out by the limit, in all. */
  hidden: number;
  moreChains: number;
  /** Chains left out because none of their rules has counted a packet (`traffic`). */
  quietChains: number;
  sort: TableSort;
  traffic: boolean;
  /** The one chain expanded, if any. */
  chain: string | null;
}

export interface LiveTablesOptions {
  farm?: string;
  scope?: "natfarm" | "all";
  sort?: TableSort;
  traffic?: boolean;
  chain?: string;
  limit?: number;
}

/** Whether the page needs every chain read, not the first few hundred rules: counters decide what it shows. */
export function needsFullRead(opts: LiveTablesOptions): boolean {
  return !opts.farm && ((opts.sort ?? "rule") !== "rule" || Boolean(opts.traffic));
}

export function liveTablesView(snap: TablesSnapshot, opts: LiveTablesOptions = {}): LiveTablesView {
  const farm = opts.farm ?? "";
  const scope = opts.scope ?? "natfarm";
  const sort = opts.sort ?? "rule";
  const traffic = opts.traffic ?? false;
  const only = opts.chain ?? null;
  let budget = opts.limit ?? (only ? EXPAND_MAX_RULES : TABLES_MAX_RULES);
  let hidden = 0;
  let quietChains = 0;
  const key = sort === "bytes" ? "bytes" : "packets";
  const tables = snap.tables.map((t) => {
    const picked: LiveTablesChain[] = [];
    for (const c of t.chains) {
      if (only && `${t.name} ${c.name}` !== only) continue;
      let rules = c.rules.filter((r) => (farm ? r.farm === farm : scope === "all" || r.owned));
      if (!farm && scope === "natfarm" && !c.owned && rules.length === 0) continue;
      if (farm && rules.length === 0) continue;
      if (scope === "all" && !farm && !c.owned && c.rules.length === 0 && !c.policy) continue;
      if (traffic) {
        rules = rules.filter((r) => r.packets > 0);
        if (rules.length === 0) {
          quietChains++;
          continue;
        }
      }
      if (sort !== "rule") rules = rules.map((r, i) => [r, i] as const).sort((a, b) => b[0][key] - a[0][key] || a[1] - b[1]).map(([r]) => r);
      picked.push({ ...c, rules, total: rules.length });
    }
    if (sort !== "rule") {
      const top = (c: LiveTablesChain) => c.rules.reduce((n, r) => n + r[key], 0);
      picked.sort((a, b) => top(b) - top(a));
    }
    return { name: t.name, chains: picked };
  });
  // The limit is spent in the order shown: with a counter sort the busiest chains keep their rules.
  for (const t of tables) {
    for (const c of t.chains) {
      if (c.rules.length > budget) {
        hidden += c.rules.length - budget;
        c.rules = c.rules.slice(0, budget);
      }
      budget -= c.rules.length;
    }
  }
  return { at: snap.at, tables, hidden, moreChains: snap.unreadChains ?? 0, quietChains, sort, traffic, chain: only };
}
