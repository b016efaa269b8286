import { formatMark, MARK_RANGE_MASK } from "../farms/marks.ts";
import { farmPortItems, type ResolvedFarm } from "../farms/schema.ts";
import { backendComment, HOOKS, parseShardChain, SHARD_ENTRY, shardChain, shardOf, type ShardRole, type Table } from "./layout.ts";
import { formatProbability, ruleProbabilities } from "./probability.ts";

/**
 * Farms → the rules natfarm wants in the kernel. Pure: no I/O. Every rule is
 * kept as the exact text `iptables-save` prints after `-A <chain> `, so the
 * desired rules and the live rules compare as strings (drift, idempotence).
 */
export type RuleKind = "hook" | "restore" | "save" | "shard" | "mark" | "dnat" | "snat";

export interface RuleLine {
  table: Table;
  chain: string;
  spec: string;
  kind: RuleKind;
  farm?: string;
  backend?: number;
  /** For entry-chain jumps: the shard jumped to. */
  shard?: number;
}

export const RESTORE_MARK_SPEC =
  '-m comment --comment "natfarm: restore connection mark" -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
export const SAVE_MARK_SPEC =
  '-m state --state NEW -m comment --comment "natfarm: save connection mark of new connections" -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';

export function hookSpec(chain: string): string {
  return `-m comment --comment "natfarm: entry" -j ${chain}`;
}

/** The fixed rules around an entry chain's shard jumps: head rules come before them, tail rules after. */
export const ENTRY_FRAME: Record<string, { head: string[]; tail: string[] }> = {
  "mangle NATFARM-PREROUTING": { head: [RESTORE_MARK_SPEC], tail: [SAVE_MARK_SPEC] },
  "nat NATFARM-PREROUTING": { head: [], tail: [] },
  "nat NATFARM-POSTROUTING": { head: [], tail: [] },
};

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

/**
 * Jumps from an entry chain into a shard. Only new connections are marked
 * (established ones get their mark back from the connection), and the nat
 * shards are entered only by packets that carry a mark in natfarm's range.
 */
export function shardJumpSpec(role: ShardRole, shard: number): string {
  const chain = shardChain(role, shard);
  const comment = `-m comment --comment "natfarm: shard ${chain.slice(-2)}"`;
  if (role === "MARK") return `-m state --state NEW ${comment} -j ${chain}`;
  return `-m mark ! --mark 0x0/${formatMark(MARK_RANGE_MASK)} ${comment} -j ${chain}`;
}

/** Scratch marks for source hashing, above natfarm's own range. */
export const HASH_SCRATCH = 0x10000;
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

function protoMatch(farm: ResolvedFarm): string {
  return farm.protocol === "all" ? "" : ` -p ${farm.protocol}`;
}

function portMatch(farm: ResolvedFarm): string {
  return farm.protocol === "all" || farmPortItems(farm).length === 0 ? "" : ` -m multiport --dports ${farm.ports}`;
}

/** What one farm contributes: its rules inside its shard chains. */
export interface FarmRules {
  farm: string;
  shard: number;
  rules: RuleLine[];
}

/** Rendered farms by their JSON: a one-farm change in a long-running console re-renders nothing else. */
const rendered = new Map<string, FarmRules>();
const RENDERED_MAX = 50_000;

export function renderFarm(farm: ResolvedFarm): FarmRules {
  const key = JSON.stringify(farm);
  const hit = rendered.get(key);
  if (hit) return hit;
  const r = renderFarmUncached(farm);
  if (rendered.size >= RENDERED_MAX) rendered.clear();
  rendered.set(key, r);
  return r;
}

function renderFarmUncached(farm: ResolvedFarm): FarmRules {
  const shard = shardOf(farm.name);
  const chain = (role: ShardRole) => shardChain(role, shard);
  const rules: RuleLine[] = [];
  if (farm.status !== "up") return { farm: farm.name, shard, rules };

  const vip = `${farm.vip}/32`;
  const p = protoMatch(farm);
  const ports = portMatch(farm);
  const match = (extra: string) => `-d ${vip}${p}${extra}${ports}`;
  const mark = (index: number, m: number, matches = "") =>
    `${matches} -m comment --comment ${backendComment(farm.name, index)} -j MARK --set-xmark ${formatMark(m)}/0xffffffff`;
  const push = (index: number, spec: string) => rules.push({ table: "mangle", chain: chain("MARK"), kind: "mark", farm: farm.name, backend: index, spec });
  const chosen = eligibleBackends(farm);

  if (farm.scheduler === "roundrobin") {
    // One nth counter per rule, all seeing every new connection: rule i takes every n-th, shifted by i.
    chosen.forEach(({ b, index }, i) => push(index, `${match(` -m statistic --mode nth --every ${chosen.length} --packet ${i}`)}${mark(index, b.mark)}`));
  } else if (farm.scheduler === "sourcehash" && chosen.length > 0) {
    // HMARK puts hash(source) mod n into a scratch mark, which each backend's rule turns into its own mark.
    rules.push({
      table: "mangle",
      chain: chain("MARK"),
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
        chain: chain("MARK"),
        kind: "mark",
        farm: farm.name,
        backend: index,
        spec: `${match("")} -m mark --mark ${formatMark(b.mark)} -m recent --set ${recent(b.mark)} -m comment --comment ${backendComment(farm.name, index)}`,
      });
    }
  }
  // Translation rules exist for every backend, whatever its state: connections
  // already bound to a drained backend (or related to one) keep their way.
  const live = farm.backends.map((b, index) => ({ b, index }));
  const byMark = (index: number, mark: number) =>
    `${p.trimStart()} -m mark --mark ${formatMark(mark)} -m comment --comment ${backendComment(farm.name, index)}`.trimStart();
  for (const { b, index } of live) {
    const to = farm.protocol === "all" || b.port === null ? b.ip : `${b.ip}:${b.port}`;
    rules.push({ table: "nat", chain: chain("DNAT"), kind: "dnat", farm: farm.name, backend: index, spec: `${byMark(index, b.mark)} -j DNAT --to-destination ${to}` });
  }
  if (farm.mode === "nat") {
    for (const { b, index } of live) {
      rules.push({ table: "nat", chain: chain("SNAT"), kind: "snat", farm: farm.name, backend: index, spec: `${byMark(index, b.mark)} -j SNAT --to-source ${farm.vip}` });
    }
  }
  return { farm: farm.name, shard, rules };
}

/** The complete desired state: every owned chain with its ordered rules, and the hooks. */
export interface DesiredRuleset {
  /** key `${table} ${chain}` → ordered rules. */
  chains: Map<string, RuleLine[]>;
  hooks: RuleLine[];
  farms: Map<string, FarmRules>;
}

export function chainKey(table: Table, chain: string): string {
  return `${table} ${chain}`;
}

/**
 * With no farm up there is nothing at all (no hooks either). `keepSkeleton`
 * keeps the hooks and entry chains anyway: a scoped change renders only some
 * farms, and others still need the skeleton.
 */
export function renderRuleset(farms: readonly ResolvedFarm[], opts: { keepSkeleton?: boolean } = {}): DesiredRuleset {
  const chains = new Map<string, RuleLine[]>();
  const farmRules = new Map<string, FarmRules>();
  const sorted = [...farms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shards = new Map<string, RuleLine[]>();
  for (const farm of sorted) {
    const r = renderFarm(farm);
    farmRules.set(r.farm, r);
    for (const line of r.rules) {
      const key = chainKey(line.table, line.chain);
      let list = shards.get(key);
      if (!list) shards.set(key, (list = []));
      list.push(line);
    }
  }
  if (shards.size === 0 && !opts.keepSkeleton) return { chains, hooks: [], farms: farmRules };

  const jumps = new Map<string, RuleLine[]>(HOOKS.map((h) => [chainKey(h.table, h.chain), []]));
  const keys = [...shards.keys()].sort();
  for (const key of keys) {
    const { table, chain: name } = splitKey(key);
    const { role, shard } = parseShardChain(name)!;
    const entry = SHARD_ENTRY[role];
    jumps.get(chainKey(table, entry))!.push({ table, chain: entry, spec: shardJumpSpec(role, shard), kind: "shard", shard });
  }
  for (const hook of HOOKS) {
    const key = chainKey(hook.table, hook.chain);
    const frame = ENTRY_FRAME[key]!;
    chains.set(key, [
      ...frame.head.map((spec): RuleLine => ({ table: hook.table, chain: hook.chain, spec, kind: "restore" })),
      ...jumps.get(key)!,
      ...frame.tail.map((spec): RuleLine => ({ table: hook.table, chain: hook.chain, spec, kind: "save" })),
    ]);
  }
  for (const key of keys) chains.set(key, shards.get(key)!);
  const hooks = HOOKS.map((h): RuleLine => ({ table: h.table, chain: h.builtin, spec: hookSpec(h.chain), kind: "hook" }));
  return { chains, hooks, farms: farmRules };
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
