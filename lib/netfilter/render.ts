import { formatMark, MARK_RANGE_MASK, SCRATCH_MIN } from "../farms/marks.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import { buildTree, farmItem, farmMatch, markTree } from "./dispatch.ts";
import { backendComment, chainKey, farmChain, HOOKS, idleComment, markBlockChain, NAT_ROLES, NAT_ROOT, VIP_ROOT, type Table } from "./layout.ts";
import { formatProbability, ruleProbabilities } from "./probability.ts";

/**
 * Farms → the rules natfarm wants in the kernel. Pure: no I/O. Every rule is
 * kept as the exact text `iptables-save` prints after `-A <chain> `, so the
 * desired rules and the live rules compare as strings (drift, idempotence).
 */
export type RuleKind = "hook" | "restore" | "save" | "dispatch" | "mark" | "idle" | "dnat" | "snat";

export interface RuleLine {
  table: Table;
  chain: string;
  spec: string;
  kind: RuleKind;
  farm?: string;
  backend?: number;
  /** nat translations: the backend's mark (their chain is the mark's block). */
  mark?: number;
}

export const RESTORE_MARK_SPEC =
  '-m comment --comment "natfarm: restore connection mark" -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
export const SAVE_MARK_SPEC =
  '-m state --state NEW -m comment --comment "natfarm: save connection mark of new connections" -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';

export function hookSpec(chain: string): string {
  return `-m comment --comment "natfarm: entry" -j ${chain}`;
}

/** The one jump of each entry chain into its tree: only new connections are marked, only marked packets translated. */
export const DISPATCH_SPEC: Record<string, string> = {
  "mangle NATFARM-PREROUTING": `-m state --state NEW -m comment --comment "natfarm: new connections, by destination" -j ${VIP_ROOT}`,
  "nat NATFARM-PREROUTING": `-m mark ! --mark 0x0/${formatMark(MARK_RANGE_MASK)} -m comment --comment "natfarm: by mark" -j ${NAT_ROOT.DNAT}`,
  "nat NATFARM-POSTROUTING": `-m mark ! --mark 0x0/${formatMark(MARK_RANGE_MASK)} -m comment --comment "natfarm: by mark" -j ${NAT_ROOT.SNAT}`,
};

/** The fixed rules around an entry chain's jump: head rules come before it, tail rules after. */
export const ENTRY_FRAME: Record<string, { head: string[]; tail: string[] }> = {
  "mangle NATFARM-PREROUTING": { head: [RESTORE_MARK_SPEC], tail: [SAVE_MARK_SPEC] },
  "nat NATFARM-PREROUTING": { head: [], tail: [] },
  "nat NATFARM-POSTROUTING": { head: [], tail: [] },
};

/** An entry chain's rules as natfarm writes it. */
export function entryRules(key: string): string[] {
  const { head, tail } = ENTRY_FRAME[key]!;
  return [...head, DISPATCH_SPEC[key]!, ...tail];
}

/** Whether an entry chain's live rules still start with its head and end with its tail. */
export function entryFrameIntact(key: string, rules: readonly { spec: string }[]): boolean {
  const frame = ENTRY_FRAME[key];
  if (!frame) return false;
  const { head, tail } = frame;
  return (
    rules.length >= head.length + tail.length &&
    head.every((s, i) => rules[i]!.spec === s) &&
    tail.every((s, i) => rules[rules.length - tail.length + i]!.spec === s)
  );
}

/** Scratch marks for source hashing (0x10000 + i, i below 64), in the part of natfarm's range never given to a backend. */
export const HASH_SCRATCH = SCRATCH_MIN;
const HMARK_SEED = "0x6e617466";

function farmTagComment(farm: string, tag: string): string {
  return `FARM_${farm}_${tag}_`;
}

/** The recent-match list of one backend's persistent clients. */
export function persistenceList(mark: number): string {
  return `NATFARM_${formatMark(mark)}`;
}

/**
 * Backends that may receive new connections: those up, and with the priority
 * scheduler only the best level among them (the next level takes over when
 * every backend of the best one is down).
 */
export function eligibleBackends<B extends { state: string; priority?: number }>(farm: { scheduler?: string; backends: readonly B[] }) {
  const up = farm.backends.map((b, index) => ({ b, index })).filter(({ b }) => b.state === "up");
  if (farm.scheduler !== "priority" || up.length === 0) return up;
  const best = Math.min(...up.map(({ b }) => b.priority ?? 1));
  return up.filter(({ b }) => (b.priority ?? 1) === best);
}

/** What one farm contributes: its chain's rules (mangle) and its translations in their mark blocks (nat). */
export interface FarmRules {
  farm: string;
  /** The farm's chain, when it has mangle rules. */
  chain: string | null;
  rules: RuleLine[];
}

/**
 * Rendered farms by their JSON: a one-farm change in a long-running console
 * re-renders nothing else. A process that renders once (a CLI command) turns
 * the cache off: the JSON keys cost it a third of the render (0.1 s at 5,000
 * farms) and would never be looked up again.
 */
const rendered = new Map<string, FarmRules>();
const RENDERED_MAX = 50_000;
let keepRendered = true;

export function keepRenderedFarms(keep: boolean): void {
  keepRendered = keep;
  if (!keep) rendered.clear();
}

export function renderFarm(farm: ResolvedFarm): FarmRules {
  if (!keepRendered) return renderFarmUncached(farm);
  const key = JSON.stringify(farm);
  const hit = rendered.get(key);
  if (hit) return hit;
  const r = renderFarmUncached(farm);
  if (rendered.size >= RENDERED_MAX) rendered.clear();
  rendered.set(key, r);
  return r;
}

function renderFarmUncached(farm: ResolvedFarm): FarmRules {
  const fchain = farmChain(farm.name);
  const rules: RuleLine[] = [];
  if (farm.status !== "up") return { farm: farm.name, chain: null, rules };

  const fm = farmMatch(farm);
  const p = fm.proto;
  const match = (extra: string) => `${fm.dest}${p}${extra}${fm.ports}`;
  const mark = (index: number, m: number, matches = "") =>
    `${matches} -m comment --comment ${backendComment(farm.name, index)} -j MARK --set-xmark ${formatMark(m)}/0xffffffff`;
  const push = (index: number, spec: string) => rules.push({ table: "mangle", chain: fchain, kind: "mark", farm: farm.name, backend: index, spec });
  const chosen = eligibleBackends(farm);

  // Backends without a MARK rule (drained, down, a lower priority) are named in one rule, so a
  // later change finds their translations by their marks; it also counts the farm's new connections.
  const chosenSet = new Set(chosen.map(({ index }) => index));
  const idle = farm.backends.filter((_, i) => !chosenSet.has(i)).map((b) => b.mark);
  for (const marks of markLists(idle, 200 - farm.name.length)) {
    rules.push({ table: "mangle", chain: fchain, kind: "idle", farm: farm.name, spec: `${match("")} -m comment --comment "${idleComment(farm.name, marks)}"` });
  }

  if (farm.scheduler === "roundrobin") {
    // One nth counter per rule, all seeing every new connection: rule i takes every n-th, shifted by i.
    chosen.forEach(({ b, index }, i) => push(index, `${match(` -m statistic --mode nth --every ${chosen.length} --packet ${i}`)}${mark(index, b.mark)}`));
  } else if (farm.scheduler === "sourcehash" && chosen.length > 0) {
    // HMARK puts hash(source) mod n into a scratch mark, which each backend's rule turns into its own mark.
    rules.push({
      table: "mangle",
      chain: fchain,
      kind: "mark",
      farm: farm.name,
      spec: `${match("")} -m comment --comment ${farmTagComment(farm.name, "hash")} -j HMARK --hmark-src-prefix 32 --hmark-rnd ${HMARK_SEED} --hmark-mod ${chosen.length} --hmark-offset ${HASH_SCRATCH}`,
    });
    chosen.forEach(({ b, index }, i) => push(index, `${match("")} -m mark --mark ${formatMark(HASH_SCRATCH + i)}${mark(index, b.mark)}`));
  } else {
    const probs = ruleProbabilities(chosen.map(({ b }) => b.weight));
    // The guide's order: last backend first, so the first backend's rule is evaluated last and wins when it matches.
    for (let k = chosen.length - 1; k >= 0; k--) {
      const { b, index } = chosen[k]!;
      push(index, `${match(` -m statistic --mode random --probability ${formatProbability(probs[k]!)}`)}${mark(index, b.mark)}`);
    }
  }
  if (farm.persistence === "srcip") {
    // A client seen within the TTL goes back to its backend (last match wins), then its entry is refreshed.
    const recent = (m: number) => `--name ${persistenceList(m)} --mask 255.255.255.255 --rsource`;
    for (const { b, index } of chosen) {
      push(index, `${match("")} -m recent --rcheck --seconds ${farm.persistenceTtl ?? 120} --reap ${recent(b.mark)}${mark(index, b.mark)}`);
    }
    for (const { b, index } of chosen) {
      rules.push({
        table: "mangle",
        chain: fchain,
        kind: "mark",
        farm: farm.name,
        backend: index,
        spec: `${match("")} -m mark --mark ${formatMark(b.mark)} -m recent --set ${recent(b.mark)} -m comment --comment ${backendComment(farm.name, index)}`,
      });
    }
  }
  // Translation rules exist for every backend, whatever its state: connections
  // already bound to a drained backend (or related to one) keep their way.
  const byMark = (index: number, mark: number) =>
    `${p.trimStart()} -m mark --mark ${formatMark(mark)} -m comment --comment ${backendComment(farm.name, index)}`.trimStart();
  farm.backends.forEach((b, index) => {
    const to = farm.protocol === "all" || b.port === null ? b.ip : `${b.ip}:${b.port}`;
    rules.push({ table: "nat", chain: markBlockChain("DNAT", b.mark), kind: "dnat", farm: farm.name, backend: index, mark: b.mark, spec: `${byMark(index, b.mark)} -j DNAT --to-destination ${to}` });
  });
  if (farm.mode === "nat") {
    farm.backends.forEach((b, index) => {
      rules.push({ table: "nat", chain: markBlockChain("SNAT", b.mark), kind: "snat", farm: farm.name, backend: index, mark: b.mark, spec: `${byMark(index, b.mark)} -j SNAT --to-source ${farm.vip}` });
    });
  }
  return { farm: farm.name, chain: rules.some((r) => r.table === "mangle") ? fchain : null, rules };
}

/** Marks as `0x200-0x203,0x20c`, cut into lists of at most `max` characters (a comment holds 255). */
export function markLists(marks: readonly number[], max: number): string[] {
  const sorted = [...new Set(marks)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    runs.push(j === i ? formatMark(sorted[i]!) : `${formatMark(sorted[i]!)}-${formatMark(sorted[j]!)}`);
    i = j + 1;
  }
  const out: string[] = [];
  let cur = "";
  for (const r of runs) {
    if (cur && cur.length + 1 + r.length > max) {
      out.push(cur);
      cur = "";
    }
    cur = cur ? `${cur},${r}` : r;
  }
  if (cur) out.push(cur);
  return out;
}

/** The marks an idle-backends rule names. */
export function parseMarkList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(",")) {
    const [a, b] = part.split("-").map((x) => Number(x));
    if (!Number.isFinite(a)) continue;
    for (let m = a!; m <= (b ?? a!); m++) out.push(m);
  }
  return out;
}

/** The complete desired state: every owned chain with its ordered rules, and the hooks. */
export interface DesiredRuleset {
  /** key `${table} ${chain}` → ordered rules. */
  chains: Map<string, RuleLine[]>;
  hooks: RuleLine[];
  farms: Map<string, FarmRules>;
}

export { chainKey } from "./layout.ts";

/** Translations in a block by mark, then farm: the order a full render and a scoped change agree on. */
export function byMarkOrder(a: { spec: string; mark?: number; farm?: string }, b: { spec: string; mark?: number; farm?: string }): number {
  return (a.mark ?? 0) - (b.mark ?? 0) || ((a.farm ?? "") < (b.farm ?? "") ? -1 : (a.farm ?? "") > (b.farm ?? "") ? 1 : 0);
}

/** The skeleton: entry chains with their jump, the tree roots (empty until a farm fills them) and the hooks. */
export function skeletonChains(): Map<string, RuleLine[]> {
  const chains = new Map<string, RuleLine[]>();
  for (const hook of HOOKS) {
    const key = chainKey(hook.table, hook.chain);
    const { head, tail } = ENTRY_FRAME[key]!;
    chains.set(key, [
      ...head.map((spec): RuleLine => ({ table: hook.table, chain: hook.chain, spec, kind: "restore" })),
      { table: hook.table, chain: hook.chain, spec: DISPATCH_SPEC[key]!, kind: "dispatch" },
      ...tail.map((spec): RuleLine => ({ table: hook.table, chain: hook.chain, spec, kind: "save" })),
    ]);
  }
  return chains;
}

export function hookLines(): RuleLine[] {
  return HOOKS.map((h): RuleLine => ({ table: h.table, chain: h.builtin, spec: hookSpec(h.chain), kind: "hook" }));
}

/**
 * With no farm up there is nothing at all (no hooks either). `keepSkeleton`
 * keeps the hooks, entry chains and roots anyway.
 */
export function renderRuleset(farms: readonly ResolvedFarm[], opts: { keepSkeleton?: boolean } = {}): DesiredRuleset {
  const chains = new Map<string, RuleLine[]>();
  const farmRules = new Map<string, FarmRules>();
  const sorted = [...farms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const farmChains = new Map<string, RuleLine[]>();
  const blocks = new Map<string, RuleLine[]>();
  const items = [];
  for (const farm of sorted) {
    const r = renderFarm(farm);
    farmRules.set(r.farm, r);
    if (r.chain) items.push(farmItem(farm, r.chain));
    for (const line of r.rules) {
      const key = chainKey(line.table, line.chain);
      const target = line.table === "mangle" ? farmChains : blocks;
      let list = target.get(key);
      if (!list) target.set(key, (list = []));
      list.push(line);
    }
  }
  if (farmChains.size === 0 && blocks.size === 0 && !opts.keepSkeleton) return { chains, hooks: [], farms: farmRules };

  for (const [key, rules] of skeletonChains()) chains.set(key, rules);
  for (const [name, specs] of buildTree(items)) chains.set(chainKey("mangle", name), specs.map((spec): RuleLine => ({ table: "mangle", chain: name, spec, kind: "dispatch" })));
  for (const [key, rules] of farmChains) chains.set(key, rules);
  for (const role of NAT_ROLES) {
    const marks = [...blocks.values()].flat().filter((l) => l.kind === (role === "DNAT" ? "dnat" : "snat")).map((l) => l.mark!);
    for (const [name, specs] of markTree(role, marks)) chains.set(chainKey("nat", name), specs.map((spec): RuleLine => ({ table: "nat", chain: name, spec, kind: "dispatch" })));
  }
  for (const key of [...blocks.keys()].sort()) chains.set(key, blocks.get(key)!.sort(byMarkOrder));
  return { chains, hooks: hookLines(), farms: farmRules };
}

export function splitKey(key: string): { table: Table; chain: string } {
  const i = key.indexOf(" ");
  return { table: key.slice(0, i) as Table, chain: key.slice(i + 1) };
}

/**
 * A complete `iptables-restore --noflush` payload that builds the desired state
 * from nothing: what `natfarm render` prints and what a first apply writes.
 */
export function renderFullPayload(desired: DesiredRuleset): string {
  const out: string[] = [];
  for (const table of ["mangle", "nat"] as const) {
    const keys = [...desired.chains.keys()].filter((k) => k.startsWith(`${table} `));
    if (keys.length === 0) continue;
    out.push(`*${table}`);
    for (const key of keys) out.push(`:${key.slice(table.length + 1)} - [0:0]`);
    for (const key of keys) for (const r of desired.chains.get(key)!) out.push(`-A ${r.chain} ${r.spec}`);
    for (const h of desired.hooks.filter((h) => h.table === table)) out.push(`-I ${h.chain} 1 ${h.spec}`);
    out.push("COMMIT");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

/** One farm's rules as iptables-restore lines, for the console's "generated rules" panel. */
export function renderFarmText(farm: ResolvedFarm): string {
  const r = renderFarm(farm);
  const lines: string[] = [];
  for (const table of ["mangle", "nat"] as const) {
    const rows = r.rules.filter((l) => l.table === table);
    if (rows.length === 0) continue;
    lines.push(`*${table}`);
    for (const l of rows) lines.push(`-A ${l.chain} ${l.spec}`);
  }
  return lines.join("\n");
}
