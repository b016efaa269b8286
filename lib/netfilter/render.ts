import { formatMark } from "../farms/marks.ts";
import { farmPortItems, type ResolvedFarm } from "../farms/schema.ts";
import {
  backendComment,
  farmComment,
  HOOKS,
  SHARD_DISPATCHER,
  SHARD_TABLE,
  shardChain,
  shardOf,
  type ShardRole,
  type Table,
} from "./layout.ts";
import { formatProbability, ruleProbabilities } from "./probability.ts";

/**
 * Farms → the rules natfarm wants in the kernel. Pure: no I/O. Every rule is
 * kept as the exact text `iptables-save` prints after `-A <chain> `, so the
 * desired rules and the live rules compare as strings (drift, idempotence).
 */
export type RuleKind = "hook" | "restore" | "save" | "dispatch" | "mark" | "dnat" | "snat";

export interface RuleLine {
  table: Table;
  chain: string;
  spec: string;
  kind: RuleKind;
  farm?: string;
  backend?: number;
}

export const RESTORE_MARK_SPEC =
  '-m comment --comment "natfarm: restore connection mark" -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
export const SAVE_MARK_SPEC =
  '-m state --state NEW -m comment --comment "natfarm: save connection mark of new connections" -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';

export function hookSpec(chain: string): string {
  return `-m comment --comment "natfarm: entry" -j ${chain}`;
}

/** The fixed rules around a dispatcher's farm rules: head rules come before them, tail rules after. */
export const DISPATCHER_FRAME: Record<string, { head: string[]; tail: string[] }> = {
  "mangle NATFARM-PREROUTING": { head: [RESTORE_MARK_SPEC], tail: [SAVE_MARK_SPEC] },
  "nat NATFARM-PREROUTING": { head: [], tail: [] },
  "nat NATFARM-POSTROUTING": { head: [], tail: [] },
};

function protoMatch(farm: ResolvedFarm): string {
  return farm.protocol === "all" ? "" : ` -p ${farm.protocol}`;
}

function portMatch(farm: ResolvedFarm): string {
  return farmPortItems(farm).length === 0 || farm.protocol === "all" ? "" : ` -m multiport --dports ${farm.ports}`;
}

/** What one farm contributes: its dispatch rules and its rules inside its shards. */
export interface FarmRules {
  farm: string;
  shard: number;
  dispatch: RuleLine[];
  rules: RuleLine[];
}

export function renderFarm(farm: ResolvedFarm): FarmRules {
  const shard = shardOf(farm.name);
  const chain = (role: ShardRole) => shardChain(role, shard);
  const dispatch: RuleLine[] = [];
  const rules: RuleLine[] = [];
  if (farm.status !== "up") return { farm: farm.name, shard, dispatch, rules };

  const vip = `${farm.vip}/32`;
  const p = protoMatch(farm);
  const ports = portMatch(farm);
  const fc = farmComment(farm.name);
  const d = (role: ShardRole, spec: string) =>
    dispatch.push({ table: SHARD_TABLE[role], chain: SHARD_DISPATCHER[role], spec, kind: "dispatch", farm: farm.name });

  d("MARK", `-d ${vip}${p}${ports} -m state --state NEW -m comment --comment ${fc} -j ${chain("MARK")}`);
  d("DNAT", `-d ${vip}${p}${ports} -m comment --comment ${fc} -j ${chain("DNAT")}`);
  if (farm.mode === "nat") d("SNAT", `${p.trimStart()} -m conntrack --ctorigdst ${farm.vip} -m comment --comment ${fc} -j ${chain("SNAT")}`.trimStart());

  const live = farm.backends.map((b, index) => ({ b, index })).filter(({ b }) => b.state === "up");
  const probs = ruleProbabilities(live.map(({ b }) => b.weight));
  // The guide's order: last backend first, so the first backend's rule is evaluated last and wins when it matches.
  for (let k = live.length - 1; k >= 0; k--) {
    const { b, index } = live[k]!;
    rules.push({
      table: "mangle",
      chain: chain("MARK"),
      kind: "mark",
      farm: farm.name,
      backend: index,
      spec: `-d ${vip}${p} -m statistic --mode random --probability ${formatProbability(probs[k]!)}${ports} -m comment --comment ${backendComment(farm.name, index)} -j MARK --set-xmark ${formatMark(b.mark)}/0xffffffff`,
    });
  }
  for (const { b, index } of live) {
    const to = farm.protocol === "all" || b.port === null ? b.ip : `${b.ip}:${b.port}`;
    const match = `${p.trimStart()} -m mark --mark ${formatMark(b.mark)} -m comment --comment ${backendComment(farm.name, index)}`.trimStart();
    rules.push({ table: "nat", chain: chain("DNAT"), kind: "dnat", farm: farm.name, backend: index, spec: `${match} -j DNAT --to-destination ${to}` });
  }
  if (farm.mode === "nat") {
    for (const { b, index } of live) {
      const match = `${p.trimStart()} -m mark --mark ${formatMark(b.mark)} -m comment --comment ${backendComment(farm.name, index)}`.trimStart();
      rules.push({ table: "nat", chain: chain("SNAT"), kind: "snat", farm: farm.name, backend: index, spec: `${match} -j SNAT --to-source ${farm.vip}` });
    }
  }
  return { farm: farm.name, shard, dispatch, rules };
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

export function renderRuleset(farms: readonly ResolvedFarm[]): DesiredRuleset {
  const chains = new Map<string, RuleLine[]>();
  const farmRules = new Map<string, FarmRules>();
  const sorted = [...farms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rendered = sorted.map(renderFarm);
  const anything = rendered.some((r) => r.dispatch.length > 0);
  if (!anything) return { chains, hooks: [], farms: farmRules };

  const dispatchers = new Map<string, RuleLine[]>();
  for (const hook of HOOKS) dispatchers.set(chainKey(hook.table, hook.chain), []);
  const shards = new Map<string, RuleLine[]>();
  for (const r of rendered) {
    farmRules.set(r.farm, r);
    for (const line of r.dispatch) dispatchers.get(chainKey(line.table, line.chain))!.push(line);
    for (const line of r.rules) {
      const key = chainKey(line.table, line.chain);
      if (!shards.has(key)) shards.set(key, []);
      shards.get(key)!.push(line);
    }
    // A dispatch rule needs its target chain even when the farm has no backend rule in it.
    for (const line of r.dispatch) {
      const target = /-j (\S+)$/.exec(line.spec)![1]!;
      const key = chainKey(line.table, target);
      if (!shards.has(key)) shards.set(key, []);
    }
  }
  for (const hook of HOOKS) {
    const key = chainKey(hook.table, hook.chain);
    const frame = DISPATCHER_FRAME[key]!;
    const framed = (spec: string, kind: RuleKind): RuleLine => ({ table: hook.table, chain: hook.chain, spec, kind });
    chains.set(key, [
      ...frame.head.map((s) => framed(s, s === RESTORE_MARK_SPEC ? "restore" : "save")),
      ...dispatchers.get(key)!,
      ...frame.tail.map((s) => framed(s, s === SAVE_MARK_SPEC ? "save" : "restore")),
    ]);
  }
  for (const key of [...shards.keys()].sort()) chains.set(key, shards.get(key)!);
  const hooks = HOOKS.map((h): RuleLine => ({ table: h.table, chain: h.builtin, spec: hookSpec(h.chain), kind: "hook" }));
  return { chains, hooks, farms: farmRules };
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
    const rows = [...r.dispatch, ...r.rules].filter((l) => l.table === table);
    if (rows.length === 0) continue;
    lines.push(`*${table}`);
    for (const l of rows) lines.push(`-A ${l.chain} ${l.spec}`);
  }
  return lines.join("\n");
}
