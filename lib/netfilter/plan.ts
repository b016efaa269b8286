import { TABLES, type Table } from "./layout.ts";
import type { LiveChain } from "./parse.ts";
import { ENTRY_FRAME, entryFrameIntact } from "./render.ts";

/**
 * Desired chains vs live chains → the smallest `iptables-restore --noflush`
 * payload that turns one into the other. Chains outside the plan's scope are
 * neither read nor written. Unchanged chains are left alone (their counters
 * keep counting); a changed shard is rewritten whole, carrying the counters of
 * rules that stay; an entry chain whose fixed frame is intact gets its shard
 * jumps inserted or deleted one by one.
 */
export interface PlannedRule {
  spec: string;
  packets?: number;
  bytes?: number;
  /** The farm the rule belongs to, when the renderer knows it (what "changed" is told by). */
  farm?: string;
}

export interface DesiredChain {
  table: Table;
  name: string;
  rules: PlannedRule[];
}

export interface PlanInput {
  /** Owned chains that must exist, keyed by chainKey(table, name). */
  desired: Map<string, DesiredChain>;
  /** Built-in chain key → the natfarm rules (jumps) it must hold. */
  hooks: Map<string, string[]>;
  /** Owned chains as they are, for every key in scope (absent = does not exist). */
  live: Map<string, LiveChain>;
  /** Built-in chains as they are, for every hook key in scope. */
  liveBuiltins: Map<string, LiveChain>;
  /** Entry chains must end in exactly the desired order (a rollback to a snapshot), not just hold the same jumps. */
  exactOrder?: boolean;
  /** Section size (default SECTION_LIMITS); tests cut at every chain. */
  limits?: SectionLimits;
}

export interface PlanStats {
  chainsCreated: number;
  chainsRewritten: number;
  chainsDeleted: number;
  rulesAdded: number;
  rulesDeleted: number;
}

export interface Plan {
  payload: string;
  empty: boolean;
  stats: PlanStats;
  /** Tables the payload writes, in payload order (consecutive sections of one table counted once). */
  tables: Table[];
  /** `*table ... COMMIT` sections in the payload: each commits on its own. */
  sections: number;
  /** Chain keys the payload writes (owned and built-in). */
  touched: string[];
}

/**
 * How much one `*table ... COMMIT` section may hold. iptables-nft's restore
 * costs about chains × rules per section (8,000 chains in one section: 1.1 s,
 * in sections of a few hundred: 0.36 s), so a large change is cut into
 * sections; each commits on its own, which the order below keeps safe.
 */
export interface SectionLimits {
  chains: number;
  rules: number;
}
export const SECTION_LIMITS: SectionLimits = { chains: 100, rules: 2000 };

/** A chain the payload declares (created, or flushed and rewritten) with its rules. */
interface Written {
  name: string;
  lines: string[];
  refs: string[];
}

interface TableOps {
  write: Written[];
  del: string[];
  insert: string[];
  /** Chains to delete, with the chains their live rules jump to. */
  remove: { name: string; refs: string[]; rules: number }[];
}

/** A rule's jump to a user chain (`-j NAME` or `-g NAME` at its end: such targets take no options), or null. */
function jumpTarget(spec: string): string | null {
  // lastIndexOf rather than a regex: this runs over every rule of a whole apply.
  const i = Math.max(spec.lastIndexOf("-j "), spec.lastIndexOf("-g "));
  if (i === -1 || (i > 0 && spec.charCodeAt(i - 1) !== 32)) return null;
  const target = spec.slice(i + 3);
  return target === "" || target.includes(" ") ? null : target;
}

function jumpTargets(specs: Iterable<string>): string[] {
  const out: string[] = [];
  for (const s of specs) {
    const t = jumpTarget(s);
    if (t) out.push(t);
  }
  return out;
}

/** Height of each chain above the chains it jumps to, among `names` only (leaves 0). */
function heights(chains: { name: string; refs: string[] }[]): Map<string, number> {
  const byName = new Map(chains.map((c) => [c.name, c]));
  const out = new Map<string, number>();
  const visit = (name: string, path: Set<string>): number => {
    const known = out.get(name);
    if (known !== undefined) return known;
    // A loop cannot be written by natfarm (the kernel refuses it); guard anyway.
    if (path.has(name)) return 0;
    path.add(name);
    let h = 0;
    for (const r of byName.get(name)!.refs) if (byName.has(r) && r !== name) h = Math.max(h, visit(r, path) + 1);
    path.delete(name);
    out.set(name, h);
    return h;
  };
  for (const c of chains) visit(c.name, new Set());
  return out;
}

/**
 * One table's part of the payload as sections: chains written children
 * first (a jump's target always exists when the jump is added: created in
 * an earlier section or declared in the same one), the rule edits of entry
 * and built-in chains after every write, chains deleted last and parents
 * first (nothing left pointing at a chain when it goes). Any prefix of
 * these sections leaves the table valid, and every chain in it either as
 * it was or as it will be.
 */
function tableSections(table: Table, o: TableOps, limits: SectionLimits): string[][] {
  const sections: string[][] = [];
  const h = heights(o.write);
  const writes = o.write.map((w, i) => ({ w, i })).sort((a, b) => h.get(a.w.name)! - h.get(b.w.name)! || a.i - b.i);
  let declare: string[] = [];
  let append: string[] = [];
  let chains = 0;
  let rules = 0;
  const cut = () => {
    if (chains === 0) return;
    sections.push([`*${table}`, ...declare, ...append]);
    declare = [];
    append = [];
    chains = 0;
    rules = 0;
  };
  for (const { w } of writes) {
    if (chains > 0 && (chains + 1 > limits.chains || rules + w.lines.length > limits.rules)) cut();
    declare.push(`:${w.name} - [0:0]`);
    append.push(...w.lines);
    chains++;
    rules += w.lines.length;
  }
  const edits = [...o.del, ...o.insert];
  if (chains > 0 || edits.length > 0) {
    if (chains > 0 && rules + edits.length > limits.rules) cut();
    sections.push([`*${table}`, ...declare, ...append, ...edits]);
  }
  // Deleted chains go parents first: a section flushes its chains before removing them.
  const rh = heights(o.remove);
  const removes = [...o.remove].sort((a, b) => rh.get(b.name)! - rh.get(a.name)!);
  let flush: string[] = [];
  let remove: string[] = [];
  chains = 0;
  rules = 0;
  const cutRemove = () => {
    if (chains === 0) return;
    sections.push([`*${table}`, ...flush, ...remove]);
    flush = [];
    remove = [];
    chains = 0;
    rules = 0;
  };
  for (const r of removes) {
    if (chains > 0 && (chains + 1 > limits.chains || rules + r.rules > limits.rules)) cutRemove();
    flush.push(`-F ${r.name}`);
    remove.push(`-X ${r.name}`);
    chains++;
    rules += r.rules;
  }
  cutRemove();
  for (const s of sections) s.push("COMMIT");
  return sections;
}

function counted(chain: string, rule: PlannedRule): string {
  return `[${rule.packets ?? 0}:${rule.bytes ?? 0}] -A ${chain} ${rule.spec}`;
}

/** Desired rules with counters taken over from identical live rules, in order. */
function carryCounters(desired: PlannedRule[], live: LiveChain | undefined): PlannedRule[] {
  const pool = new Map<string, { packets: number; bytes: number }[]>();
  for (const r of live?.rules ?? []) {
    if (!pool.has(r.spec)) pool.set(r.spec, []);
    pool.get(r.spec)!.push({ packets: r.packets, bytes: r.bytes });
  }
  return desired.map((r) => {
    if (r.packets !== undefined) return r;
    const c = pool.get(r.spec)?.shift();
    return c ? { spec: r.spec, packets: c.packets, bytes: c.bytes } : r;
  });
}

function sameSpecs(a: readonly { spec: string }[], b: readonly { spec: string }[]): boolean {
  return a.length === b.length && a.every((r, i) => r.spec === b[i]!.spec);
}

function multiset(specs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of specs) m.set(s, (m.get(s) ?? 0) + 1);
  return m;
}

/** Rule-by-rule edit of an entry chain whose frame is in place; null when it must be rewritten. */
function editEntryChain(key: string, desired: DesiredChain, live: LiveChain): { del: string[]; ins: string[] } | null {
  if (!entryFrameIntact(key, live.rules)) return null;
  const { head, tail } = ENTRY_FRAME[key]!;
  const lr = live.rules;
  const liveMiddle = lr.slice(head.length, lr.length - tail.length).map((r) => r.spec);
  const wantMiddle = desired.rules.slice(head.length, desired.rules.length - tail.length).map((r) => r.spec);
  const have = multiset(liveMiddle);
  const want = multiset(wantMiddle);
  const del: string[] = [];
  const ins: string[] = [];
  for (const [spec, n] of have) for (let i = want.get(spec) ?? 0; i < n; i++) del.push(spec);
  for (const [spec, n] of want) for (let i = have.get(spec) ?? 0; i < n; i++) ins.push(spec);
  return { del, ins };
}

export function planChanges(input: PlanInput): Plan {
  return planOf(input, true);
}

/** `emit` false: the stats and touched chains only (planPhased's net change), no payload built. */
function planOf(input: PlanInput, emit: boolean): Plan {
  const ops = new Map<Table, TableOps>(TABLES.map((t) => [t, { write: [], del: [], insert: [], remove: [] }]));
  const stats: PlanStats = { chainsCreated: 0, chainsRewritten: 0, chainsDeleted: 0, rulesAdded: 0, rulesDeleted: 0 };
  const touched = new Set<string>();

  for (const [key, want] of input.desired) {
    const o = ops.get(want.table)!;
    const live = input.live.get(key);
    if (live && sameSpecs(live.rules, want.rules)) continue;
    if (live) {
      const edit = input.exactOrder ? null : editEntryChain(key, want, live);
      if (edit) {
        // The same jumps in another order: an entry chain's jumps are not ordered.
        if (edit.del.length + edit.ins.length === 0) continue;
        touched.add(key);
        for (const spec of edit.del) o.del.push(`-D ${want.name} ${spec}`);
        const head = ENTRY_FRAME[key]!.head.length;
        for (const spec of edit.ins) o.insert.push(`-I ${want.name} ${head + 1} ${spec}`);
        stats.rulesDeleted += edit.del.length;
        stats.rulesAdded += edit.ins.length;
        continue;
      }
      stats.chainsRewritten++;
      stats.rulesDeleted += live.rules.length;
    } else {
      stats.chainsCreated++;
    }
    touched.add(key);
    if (emit) o.write.push({ name: want.name, lines: carryCounters(want.rules, live).map((r) => counted(want.name, r)), refs: jumpTargets(want.rules.map((r) => r.spec)) });
    stats.rulesAdded += want.rules.length;
  }

  for (const [key, live] of input.live) {
    if (input.desired.has(key)) continue;
    const o = ops.get(live.table as Table)!;
    touched.add(key);
    if (emit) o.remove.push({ name: live.name, refs: jumpTargets(live.rules.map((r) => r.spec)), rules: live.rules.length });
    stats.chainsDeleted++;
    stats.rulesDeleted += live.rules.length;
  }

  for (const [key, builtin] of input.liveBuiltins) {
    const wanted = multiset(input.hooks.get(key) ?? []);
    const have = multiset(builtin.rules.filter((r) => r.owned).map((r) => r.spec));
    const o = ops.get(builtin.table as Table)!;
    for (const [spec, n] of have) {
      for (let i = wanted.get(spec) ?? 0; i < n; i++) {
        o.del.push(`-D ${builtin.name} ${spec}`);
        stats.rulesDeleted++;
        touched.add(key);
      }
    }
    for (const [spec, n] of wanted) {
      for (let i = have.get(spec) ?? 0; i < n; i++) {
        o.insert.push(`-I ${builtin.name} 1 ${spec}`);
        stats.rulesAdded++;
        touched.add(key);
      }
    }
  }

  if (!emit) return { payload: "", empty: touched.size === 0, stats, tables: [], sections: 0, touched: [...touched] };
  const lines: string[] = [];
  const tables: Table[] = [];
  let sections = 0;
  for (const table of TABLES) {
    const parts = tableSections(table, ops.get(table)!, input.limits ?? SECTION_LIMITS);
    if (parts.length === 0) continue;
    tables.push(table);
    sections += parts.length;
    for (const part of parts) for (const l of part) lines.push(l);
  }
  return {
    payload: lines.length ? `${lines.join("\n")}\n` : "",
    empty: lines.length === 0,
    stats,
    tables,
    sections,
    touched: [...touched],
  };
}

/** Desired state for the planner from rendered rule lines. */
export function desiredFromRendered(
  chains: Map<string, { table: Table; chain: string; spec: string; farm?: string }[]>,
): Map<string, DesiredChain> {
  const out = new Map<string, DesiredChain>();
  for (const [key, rules] of chains) {
    const [table, name] = key.split(" ") as [Table, string];
    out.set(key, { table, name, rules: rules.map((r) => (r.farm ? { spec: r.spec, farm: r.farm } : { spec: r.spec })) });
  }
  return out;
}

/** The state to go back to after a failed apply: the live chains as they were, counters included. */
export function desiredFromLive(live: Map<string, LiveChain>): Map<string, DesiredChain> {
  const out = new Map<string, DesiredChain>();
  for (const [key, c] of live) {
    out.set(key, { table: c.table as Table, name: c.name, rules: c.rules.map((r) => ({ spec: r.spec, packets: r.packets, bytes: r.bytes })) });
  }
  return out;
}


/**
 * A change as iptables-restore sections in make-before-break order. iptables
 * commits each `*table ... COMMIT` section on its own, so a process killed
 * between two sections (or a later section refused) leaves the earlier ones
 * in force. The order keeps every such prefix forwarding consistently:
 *   1. nat grows to the union of the old and new translations (nothing removed);
 *   2. mangle switches to the new marks (every mark it can set is translated);
 *   3. nat shrinks to the new translations (no mark set by mangle loses its own).
 * A large phase is itself several sections (children first, deletions last),
 * each leaving every chain either as it was or as it will be: within nat
 * growing, old marks keep their translations; within mangle, a chain already
 * switched sets only marks nat translates; within nat shrinking, mangle sets
 * only new marks, whose translations are all in place.
 * Stats, `touched` and `empty` describe the net change, as `planChanges` does.
 */
export function planPhased(input: PlanInput): Plan {
  const net = planOf(input, false);
  if (net.empty) return net;
  const inTable = <V extends { table: string }>(m: Map<string, V>, table: Table) => new Map([...m].filter(([, v]) => v.table === table));
  const hooksIn = (table: Table) => new Map([...input.hooks].filter(([k]) => k.startsWith(`${table} `)));
  const natLive = inTable(input.live, "nat");
  const natBuiltins = inTable(input.liveBuiltins, "nat");

  // Whether the union holds anything the new state does not: otherwise there is nothing to shrink.
  let extra = false;
  const union = new Map<string, DesiredChain>();
  for (const [key, want] of inTable(input.desired, "nat")) {
    const rules = unionRules(want.rules, natLive.get(key));
    if (rules.length !== want.rules.length) extra = true;
    union.set(key, { ...want, rules });
  }
  for (const [key, live] of natLive) {
    if (union.has(key)) continue;
    extra = true;
    union.set(key, { table: "nat", name: live.name, rules: live.rules.map(keepCounters) });
  }
  const unionHooks = new Map<string, string[]>();
  for (const [key, builtin] of natBuiltins) {
    const owned = builtin.rules.filter((r) => r.owned).map((r) => r.spec);
    const want = input.hooks.get(key) ?? [];
    const hooks = unionRules(want.map((spec) => ({ spec })), { rules: owned.map((spec) => ({ spec, packets: 0, bytes: 0 })) }).map((r) => r.spec);
    if (hooks.length !== want.length) extra = true;
    unionHooks.set(key, hooks);
  }

  const { exactOrder, limits } = input;
  const grow = planChanges({ desired: union, hooks: unionHooks, live: natLive, liveBuiltins: natBuiltins, limits });
  const switchMarks = planChanges({ desired: inTable(input.desired, "mangle"), hooks: hooksIn("mangle"), live: inTable(input.live, "mangle"), liveBuiltins: inTable(input.liveBuiltins, "mangle"), exactOrder, limits });
  const shrink = !extra ? null : planChanges({
    exactOrder,
    limits,
    desired: inTable(input.desired, "nat"),
    hooks: hooksIn("nat"),
    live: asLive(union),
    liveBuiltins: new Map([...natBuiltins].map(([key, b]) => [key, withOwnedRules(b, unionHooks.get(key) ?? [])])),
  });
  const steps = [grow, switchMarks, shrink].filter((p): p is Plan => p !== null && !p.empty);
  return { ...net, payload: steps.map((p) => p.payload).join(""), tables: steps.flatMap((p) => p.tables), sections: steps.reduce((n, p) => n + p.sections, 0) };
}

function keepCounters(r: { spec: string; packets?: number; bytes?: number }): PlannedRule {
  return { spec: r.spec, packets: r.packets, bytes: r.bytes };
}

/** The wanted rules first (they win where a mark has an old and a new translation), then live rules not wanted any more. */
function unionRules(want: PlannedRule[], live: { rules: readonly { spec: string; packets: number; bytes: number }[] } | undefined): PlannedRule[] {
  const left = multiset(want.map((r) => r.spec));
  const extra: PlannedRule[] = [];
  for (const r of live?.rules ?? []) {
    const n = left.get(r.spec) ?? 0;
    if (n > 0) left.set(r.spec, n - 1);
    else extra.push(keepCounters(r));
  }
  return [...want, ...extra];
}

/** Desired chains as the kernel will hold them once written: the live state a next phase plans from. */
function asLive(chains: Map<string, DesiredChain>): Map<string, LiveChain> {
  const out = new Map<string, LiveChain>();
  for (const [key, c] of chains) {
    out.set(key, {
      table: c.table,
      name: c.name,
      policy: null,
      builtin: false,
      owned: true,
      rules: c.rules.map((r) => ({ table: c.table, chain: c.name, spec: r.spec, packets: r.packets ?? 0, bytes: r.bytes ?? 0, target: null, comment: null, owned: true })),
    });
  }
  return out;
}

function withOwnedRules(builtin: LiveChain, owned: string[]): LiveChain {
  const own = owned.map((spec) => ({ table: builtin.table, chain: builtin.name, spec, packets: 0, bytes: 0, target: null, comment: null, owned: true }));
  return { ...builtin, rules: [...own, ...builtin.rules.filter((r) => !r.owned)] };
}
