import { chainKey, HOOKS, isOwnedChain, TABLES, type Table } from "../netfilter/layout.ts";
import { parseChainListing, parseSave, type LiveChain, type LiveRuleset } from "../netfilter/parse.ts";
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
  return viewFromSave(await readSaves(target, timeoutMs, run));
}

/**
 * Both tables as text, from one `iptables-save -c` of every table. iptables-nft
 * fetches the whole ruleset from the kernel whatever `-t` names (a save of an
 * empty table costs as much as one of mangle), so one process costs about
 * two thirds of a save per table (0.53 against 0.77 s of CPU at 5,000 farms);
 * the other tables' lines are skipped when read.
 */
export async function readSaves(target: Target, timeoutMs = 30_000, run: Runner = runPrivileged): Promise<string[]> {
  const { stdout } = await run("iptables-save", ["-c"], { target, timeoutMs });
  return [stdout];
}

/**
 * natfarm's part of save texts, cheaply: each owned chain's rule specs and
 * the owned rules of the hooked built-in chains, as text, without counters.
 * Enough to tell an unchanged kernel from a changed one without building
 * the full view (a second at 5,000 farms, mostly in allocation).
 */
export interface QuickView {
  /** Owned chain key → its rule specs in order. */
  owned: Map<string, string[]>;
  /** Hooked built-in chain key → its natfarm rules' specs. */
  hooks: Map<string, string[]>;
  /** Save lines of nat translations (`-j DNAT`) in owned chains: where backends' marks are read from. */
  dnat: { chain: string; spec: string }[];
}

const HOOK_KEYS = new Set(HOOKS.map((h) => chainKey(h.table, h.builtin)));
const WANTED_TABLES: ReadonlySet<string> = new Set(TABLES);

export function quickViewFromSave(texts: readonly string[]): QuickView {
  const owned = new Map<string, string[]>();
  const hooks = new Map<string, string[]>();
  const dnat: { chain: string; spec: string }[] = [];
  for (const text of texts) {
    let table = "";
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf("\n", at);
      if (end === -1) end = text.length;
      const line = text.slice(at, end);
      at = end + 1;
      const c0 = line.charCodeAt(0);
      if (c0 === 42 /* * */) {
        table = line.slice(1).trimEnd();
        if (!WANTED_TABLES.has(table)) {
          // Another table (filter, raw...): nothing of natfarm's is read there.
          const commit = text.indexOf("\nCOMMIT", at - 1);
          at = commit === -1 ? text.length : commit + 1;
        }
        continue;
      }
      if (c0 === 58 /* : */) {
        if (line.startsWith(":NATFARM-")) {
          const name = line.slice(1, line.indexOf(" "));
          const key = `${table} ${name}`;
          if (!owned.has(key)) owned.set(key, []);
        }
        continue;
      }
      const a = line.indexOf("-A ");
      if (a === -1 || (a !== 0 && c0 !== 91) /* [ */) continue;
      const sp = line.indexOf(" ", a + 3);
      const chain = sp === -1 ? line.slice(a + 3) : line.slice(a + 3, sp);
      const spec = sp === -1 ? "" : line.slice(sp + 1).trimEnd();
      if (chain.startsWith("NATFARM-")) {
        const key = `${table} ${chain}`;
        let list = owned.get(key);
        if (!list) owned.set(key, (list = []));
        list.push(spec);
        if (spec.includes(" -j DNAT ")) dnat.push({ chain, spec });
        continue;
      }
      const key = `${table} ${chain}`;
      if (!HOOK_KEYS.has(key) || !/ -[jg] NATFARM-\S+$/.test(` ${spec}`)) continue;
      let list = hooks.get(key);
      if (!list) hooks.set(key, (list = []));
      list.push(spec);
    }
  }
  return { owned, hooks, dnat };
}

/** A full view from `iptables-save -c` texts (one per table, or all in one). */
export function viewFromSave(texts: readonly string[]): LiveView {
  const tables: LiveRuleset = new Map();
  for (const text of texts) for (const [name, table] of parseSave(text, WANTED_TABLES)) tables.set(name, table);
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
    // A save of every table leaves out a table that does not exist yet, where `-t` printed its
    // built-in chains empty: they are empty, and a restore creates them with the first rule.
    const chain = tables.get(table)?.chains.get(name) ?? { table, name, policy: "ACCEPT", builtin: true, owned: false, rules: [] };
    builtins.set(key, chain);
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
