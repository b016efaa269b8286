import { isOwnedChain, parseFarmComment, type Table } from "./layout.ts";

/**
 * Reads what the kernel holds, from `iptables-save -c` (whole tables) or
 * `iptables -S <chain> -v` (one chain), into structured rules with counters,
 * each marked as natfarm's or foreign.
 */
export interface LiveRule {
  table: string;
  chain: string;
  /** The rule as iptables-save prints it after `-A <chain> `, without counters. */
  spec: string;
  packets: number;
  bytes: number;
  target: string | null;
  comment: string | null;
  owned: boolean;
  farm?: string;
  backend?: number;
}

export interface LiveChain {
  table: string;
  name: string;
  policy: string | null;
  builtin: boolean;
  owned: boolean;
  rules: LiveRule[];
}

export interface LiveTable {
  name: string;
  chains: Map<string, LiveChain>;
}

export type LiveRuleset = Map<string, LiveTable>;

const COMMENT = /(?:^| )-m comment --comment ("(?:[^"\\]|\\.)*"|\S+)/;
const TARGET = /(?:^| )-[jg] (\S+)/;

function unquote(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replace(/\\(.)/g, "$1") : text;
}

export function describeRule(table: string, chain: string, spec: string, packets: number, bytes: number): LiveRule {
  const target = TARGET.exec(spec)?.[1] ?? null;
  const c = COMMENT.exec(spec);
  const comment = c ? unquote(c[1]!) : null;
  const owned = isOwnedChain(chain) || (target !== null && isOwnedChain(target));
  const rule: LiveRule = { table, chain, spec, packets, bytes, target, comment, owned };
  if (owned && comment) {
    const parsed = parseFarmComment(comment);
    if (parsed) {
      rule.farm = parsed.farm;
      if (parsed.backend !== undefined) rule.backend = parsed.backend;
    }
  }
  return rule;
}

function ensureChain(table: LiveTable, name: string, policy: string | null): LiveChain {
  let chain = table.chains.get(name);
  if (!chain) {
    chain = { table: table.name, name, policy, builtin: policy !== null && policy !== "-", owned: isOwnedChain(name), rules: [] };
    table.chains.set(name, chain);
  }
  return chain;
}

/** Parses `iptables-save [-c]` output (one or more tables; with `only`, the other tables are skipped). */
export function parseSave(text: string, only?: ReadonlySet<string>): LiveRuleset {
  const tables: LiveRuleset = new Map();
  let table: LiveTable | null = null;
  let skipping = false;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line === "" || line.startsWith("#")) continue;
    if (skipping) {
      if (line === "COMMIT") skipping = false;
      continue;
    }
    if (line.startsWith("*")) {
      if (only && !only.has(line.slice(1))) {
        skipping = true;
        continue;
      }
      table = { name: line.slice(1), chains: new Map() };
      tables.set(table.name, table);
      continue;
    }
    if (!table) throw new Error(`iptables-save output: rule outside a table: ${line}`);
    if (line === "COMMIT") {
      table = null;
      continue;
    }
    if (line.startsWith(":")) {
      const m = /^:(\S+) (\S+)/.exec(line);
      if (!m) throw new Error(`iptables-save output: bad chain line: ${line}`);
      ensureChain(table, m[1]!, m[2]!);
      continue;
    }
    const m = /^(?:\[(\d+):(\d+)\] )?-A (\S+) ?(.*)$/.exec(line);
    if (!m) throw new Error(`iptables-save output: cannot read line: ${line}`);
    const chain = ensureChain(table, m[3]!, null);
    chain.rules.push(describeRule(table.name, chain.name, m[4]!, Number(m[1] ?? 0), Number(m[2] ?? 0)));
  }
  return tables;
}

/** Parses `iptables -t <table> -S <chain> -v`, which puts counters as `-c P B` inside the rule. */
export function parseChainListing(table: Table, text: string): LiveChain | null {
  let chain: LiveChain | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line === "") continue;
    const n = /^-([NP]) (\S+)(?: (\S+))?/.exec(line);
    if (n) {
      chain = { table, name: n[2]!, policy: n[1] === "P" ? n[3]! : null, builtin: n[1] === "P", owned: isOwnedChain(n[2]!), rules: [] };
      continue;
    }
    const a = /^-A (\S+) ?(.*)$/.exec(line);
    if (!a) throw new Error(`iptables -S output: cannot read line: ${line}`);
    let spec = a[2]!;
    let packets = 0;
    let bytes = 0;
    const c = / -c (\d+) (\d+)(?= |$)/.exec(` ${spec}`);
    if (c) {
      packets = Number(c[1]);
      bytes = Number(c[2]);
      spec = ` ${spec}`.replace(c[0], "").trim();
    }
    chain ??= { table, name: a[1]!, policy: null, builtin: false, owned: isOwnedChain(a[1]!), rules: [] };
    chain.rules.push(describeRule(table, a[1]!, spec, packets, bytes));
  }
  return chain;
}

/** The save text of a table with natfarm's rules and chains taken out: what must never change. */
export function foreignLines(saveText: string): string[] {
  return saveText
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.replace(/^\[\d+:\d+\] /, "").replace(/^(:\S+ \S+) \[\d+:\d+\]$/, "$1"))
    .filter((l) => !/^:NATFARM-/.test(l) && !/^-A NATFARM-/.test(l) && !/ -j NATFARM-\S+$/.test(l));
}
