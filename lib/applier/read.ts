import { HOOKS, isOwnedChain, TABLES, type Table } from "../netfilter/layout.ts";
import { parseChainListing, parseSave, type LiveChain, type LiveRuleset } from "../netfilter/parse.ts";
import { chainKey } from "../netfilter/render.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";

/**
 * Reading the kernel. A full read is one `iptables-save -c` per table; a
 * scoped read lists only the chains a one-farm change can touch, which stays
 * fast however many farms the kernel holds.
 */
export interface LiveView {
  /** Owned chains that exist, among those read. */
  owned: Map<string, LiveChain>;
  /** Built-in chains natfarm hooks into, among those read. */
  builtins: Map<string, LiveChain>;
  /** Every chain key that was read (existing or not): the plan's scope. */
  scope: Set<string>;
  /** Whether every chain of both tables was read: then the scope is everything. */
  full: boolean;
  /** Entry chains put together from what was read rather than read themselves (scoped changes). */
  synthetic?: Set<string>;
  /** Whole tables, for a full read. */
  tables?: LiveRuleset;
}

export const HOOK_BUILTIN_KEYS = [...new Set(HOOKS.map((h) => chainKey(h.table, h.builtin)))];

export async function saveTable(target: Target, table: Table, timeoutMs: number, run: Runner = runPrivileged): Promise<string> {
  const { stdout } = await run("iptables-save", ["-c", "-t", table], { target, timeoutMs });
  return stdout;
}

export async function readFull(target: Target, timeoutMs = 30_000, run: Runner = runPrivileged): Promise<LiveView> {
  return viewFromSave(await Promise.all(TABLES.map((t) => saveTable(target, t, timeoutMs, run))));
}

/** A full view from `iptables-save -c` texts (one per table, or all in one). */
export function viewFromSave(texts: readonly string[]): LiveView {
  const tables: LiveRuleset = new Map();
  for (const text of texts) for (const [name, table] of parseSave(text)) tables.set(name, table);
  const owned = new Map<string, LiveChain>();
  const builtins = new Map<string, LiveChain>();
  const scope = new Set<string>();
  for (const table of TABLES) {
    for (const chain of tables.get(table)?.chains.values() ?? []) {
      const key = chainKey(table, chain.name);
      if (isOwnedChain(chain.name)) {
        owned.set(key, chain);
        scope.add(key);
      }
    }
  }
  for (const key of HOOK_BUILTIN_KEYS) {
    const [table, name] = key.split(" ") as [Table, string];
    const chain = tables.get(table)?.chains.get(name);
    if (chain) builtins.set(key, chain);
    scope.add(key);
  }
  return { owned, builtins, scope, full: true, tables };
}

// iptables-nft 1.8.9 answers "is incompatible, use 'nft' tool" for a chain that does not exist.
const NO_CHAIN = /No chain\/target\/match by that name|does not exist|is incompatible/i;

/** Lists single chains; a chain that does not exist is simply absent from the result. */
export async function readChains(target: Target, keys: Iterable<string>, timeoutMs = 30_000, run: Runner = runPrivileged): Promise<LiveView> {
  const wanted = [...new Set(keys)];
  const results = await Promise.all(
    wanted.map(async (key) => {
      const [table, name] = key.split(" ") as [Table, string];
      const r = await run("iptables", ["-w", "5", "-t", table, "-S", name, "-v"], { target, timeoutMs, allowFailure: true });
      if (r.exitCode !== 0) {
        if (NO_CHAIN.test(r.stderr)) return [key, null] as const;
        throw new Error(`iptables -t ${table} -S ${name} failed: ${r.stderr.trim()}`);
      }
      return [key, parseChainListing(table, r.stdout)] as const;
    }),
  );
  const owned = new Map<string, LiveChain>();
  const builtins = new Map<string, LiveChain>();
  for (const [key, chain] of results) {
    if (!chain) continue;
    (chain.owned ? owned : builtins).set(key, chain);
  }
  return { owned, builtins, scope: new Set(wanted), full: false };
}
