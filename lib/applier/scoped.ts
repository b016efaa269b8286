import type { ResolvedFarm } from "../farms/schema.ts";
import { buildTree, farmItem, itemOfJump, markOfRule, nodeChain, parseFarmMatch, parseNodeChain, type DispatchItem } from "../netfilter/dispatch.ts";
import { farmChain, isLegacyShardChain, markBlockChain, markGroupChain, NAT_ROLES, NAT_ROOT, parseIdleComment, parseMarkChain, VIP_ROOT, type Table } from "../netfilter/layout.ts";
import type { LiveChain } from "../netfilter/parse.ts";
import type { DesiredChain, PlanInput, PlannedRule } from "../netfilter/plan.ts";
import { byMarkOrder, chainKey, hookLines, parseMarkList, renderFarm, skeletonChains } from "../netfilter/render.ts";
import { blockJumpSpec, groupJumpSpec } from "../netfilter/dispatch.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { readChains, type LiveView } from "./read.ts";

/**
 * A change to some farms only: the chains on their paths are read (the
 * farms' own chains, the mark blocks of their old and new marks with the
 * groups and roots above them, and the destination tree from the root down
 * along their old and new keys), and only those are planned. Everything a
 * farm not named holds in them stays exactly as the kernel has it, so a
 * farm the database holds as pending is never written as a side effect.
 */
const ROOT_KEYS = [chainKey("mangle", VIP_ROOT), ...NAT_ROLES.map((r) => chainKey("nat", NAT_ROOT[r]))];

type Fetch = (keys: string[]) => Promise<Map<string, LiveChain>>;

/** The marks a farm's live chain names: its MARK rules' and its idle backends'. */
function marksOfFarmChain(chain: LiveChain | undefined): number[] {
  const out: number[] = [];
  for (const r of chain?.rules ?? []) {
    const m = /-j MARK --set-xmark (0x[0-9a-f]+)\//.exec(r.spec);
    if (m) out.push(Number(m[1]));
    const idle = r.comment ? parseIdleComment(r.comment) : null;
    if (idle) out.push(...parseMarkList(idle.marks));
  }
  return out;
}

function keyOfFarmChain(chain: LiveChain | undefined): string | null {
  for (const r of chain?.rules ?? []) {
    const f = parseFarmMatch(r.spec);
    if (f) {
      try {
        return farmItem(f, "").key;
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** The node chains a key's path may pass: one per proper prefix (the root is read anyway). */
function pathCandidates(key: string): string[] {
  const out: string[] = [];
  for (let n = 1; n < key.length; n++) out.push(chainKey("mangle", nodeChain(key.slice(0, n))));
  return out;
}

function markChainKeys(marks: Iterable<number>): string[] {
  const out = new Set<string>();
  for (const m of marks) for (const role of NAT_ROLES) {
    out.add(chainKey("nat", markGroupChain(role, m)));
    out.add(chainKey("nat", markBlockChain(role, m)));
  }
  return [...out];
}

/** What a scoped change reads: everything its plan may write, and the facts it plans from. */
export interface ScopedState {
  chains: Map<string, LiveChain>;
  /** Every key read (existing or not). */
  scope: Set<string>;
  /** Tree nodes read on the farms' paths (mangle keys). */
  nodes: Set<string>;
  /** Marks the named farms had and will have. */
  marks: Set<number>;
}

/**
 * The tree nodes each target was last seen to hold, in this process: a
 * long-running console or checker reads, in its first round, only the
 * prefixes of a path that were nodes, rather than every prefix. Only a hint
 * (the descent below still follows the jumps the kernel has, and reads any
 * node the hint missed in another round), so a kernel changed by someone
 * else costs a round, never a wrong plan.
 */
const seenNodes = new Map<string, Set<string>>();
const SEEN_TARGETS_MAX = 64;

export function forgetNodes(target: Target): void {
  seenNodes.delete(formatTarget(target));
}

/** What a read or a write showed: node chains present and absent (`complete`: every node there is). */
export function noteNodes(target: Target, present: Iterable<string>, absent: Iterable<string> = [], complete = false): void {
  const key = formatTarget(target);
  let set = complete ? undefined : seenNodes.get(key);
  if (!set) {
    if (seenNodes.size >= SEEN_TARGETS_MAX) seenNodes.clear();
    seenNodes.set(key, (set = new Set()));
  }
  for (const k of present) if (isNodeKey(k)) set.add(k);
  for (const k of absent) set.delete(k);
}

function isNodeKey(key: string): boolean {
  return key.startsWith("mangle ") && parseNodeChain(key.slice(7)) !== null;
}

async function collect(fetch: Fetch, farms: readonly ResolvedFarm[], only: ReadonlySet<string>, hint?: ReadonlySet<string>): Promise<ScopedState | null> {
  const chains = new Map<string, LiveChain>();
  const scope = new Set<string>();
  const get = async (keys: string[]) => {
    const fresh = keys.filter((k) => !scope.has(k));
    for (const k of fresh) scope.add(k);
    if (fresh.length) for (const [k, c] of await fetch(fresh)) chains.set(k, c);
  };
  const wanted = farms.filter((f) => only.has(f.name) && f.status === "up");
  const marks = new Set(wanted.flatMap((f) => f.backends.map((b) => b.mark)));
  const farmKeys = [...only].map((n) => chainKey("mangle", farmChain(n)));
  const keys = new Set<string>();
  for (const f of wanted) if (renderFarm(f).chain) keys.add(farmItem(f, "").key);
  // Every node a key's path may pass is named by a prefix of the key: those this process has seen
  // are read in the first round with the farms' chains, so a change that keeps its farms' keys and
  // marks (a backend down, a weight) reads everything it needs at once, whatever the tree's depth.
  // Without a hint (a fresh process) the descent below reads the tree a level per round, as the jumps show it.
  const candidates = (ks: Iterable<string>) => (hint ? [...ks].flatMap(pathCandidates).filter((k) => hint.has(k)) : []);
  await get([...ROOT_KEYS, ...farmKeys, ...markChainKeys(marks), ...candidates(keys)]);
  if (ROOT_KEYS.some((k) => !chains.has(k))) return null;

  // The farms' old keys and marks, from their live chains: a second round only when they moved.
  for (const k of farmKeys) for (const m of marksOfFarmChain(chains.get(k))) marks.add(m);
  for (const k of farmKeys) {
    const key = keyOfFarmChain(chains.get(k));
    if (key) keys.add(key);
  }
  await get([...markChainKeys(marks), ...candidates(keys)]);

  // Down the destination tree along every key; the nodes are already read, this only keeps those on the paths.
  const nodes = new Set<string>([chainKey("mangle", VIP_ROOT)]);
  let frontier = [chainKey("mangle", VIP_ROOT)];
  while (frontier.length) {
    const next: string[] = [];
    for (const k of frontier) {
      for (const r of chains.get(k)?.rules ?? []) {
        const target = r.target;
        const prefix = target ? parseNodeChain(target) : null;
        if (prefix === null || prefix === "") continue;
        const child = chainKey("mangle", target!);
        if (!nodes.has(child) && [...keys].some((key) => key.startsWith(prefix))) {
          nodes.add(child);
          next.push(child);
        }
      }
    }
    // Only a node the prefixes did not name (a kernel that drifted) costs another round.
    await get(next);
    frontier = next.filter((k) => chains.has(k));
  }
  for (const n of [...nodes]) if (!chains.has(n)) nodes.delete(n);
  return { chains, scope, nodes, marks };
}

/** Reads what a scoped change needs from the kernel; null when natfarm's roots are not there (a full read is needed). */
export async function readScoped(target: Target, farms: readonly ResolvedFarm[], only: ReadonlySet<string>, timeoutMs: number, run: Runner = runPrivileged): Promise<LiveView | null> {
  const fetch: Fetch = async (keys) => (await readChains(target, keys, timeoutMs, run)).owned;
  const state = await collect(fetch, farms, only, seenNodes.get(formatTarget(target)));
  if (!state) return null;
  noteNodes(target, [...state.scope].filter((k) => state.chains.has(k)), [...state.scope].filter((k) => !state.chains.has(k)));
  return { owned: state.chains, builtins: new Map(), scope: state.scope, full: false };
}

/** Whether a full view holds chains of the layout before dispatch by destination. */
export function hasLegacyChains(view: LiveView): boolean {
  return [...view.owned.values()].some((c) => isLegacyShardChain(c.name));
}

function farmOfRule(r: { farm?: string }): string | undefined {
  return r.farm;
}

/**
 * The plan's input for a scoped change, from a scoped read or a full one:
 * the named farms' chains as rendered, their mark blocks with the other
 * farms' rules as the kernel has them, the groups and roots above those
 * blocks, and the destination tree rebuilt along the farms' paths from what
 * its nodes hold (subtrees off the paths stay as they are).
 */
export async function scopedPlanInput(view: LiveView, farms: readonly ResolvedFarm[], only: ReadonlySet<string>): Promise<PlanInput> {
  const fetch: Fetch = async (keys) => new Map(keys.filter((k) => view.owned.has(k)).map((k) => [k, view.owned.get(k)!]));
  const state: ScopedState = (await collect(fetch, farms, only)) ?? { chains: new Map(), scope: new Set(), nodes: new Set(), marks: new Set() };
  const wanted = farms.filter((f) => only.has(f.name));
  const rendered = wanted.map((f) => ({ farm: f, r: renderFarm(f) }));
  const desired = new Map<string, DesiredChain>();
  const live = new Map<string, LiveChain>();
  const set = (table: Table, name: string, rules: PlannedRule[]) => desired.set(chainKey(table, name), { table, name, rules });
  const liveOf = (key: string) => {
    const c = state.chains.get(key) ?? view.owned.get(key);
    if (c) live.set(key, c);
    return c;
  };

  // The farms' own chains.
  for (const name of only) liveOf(chainKey("mangle", farmChain(name)));
  for (const { r } of rendered) if (r.chain) set("mangle", r.chain, r.rules.filter((l) => l.table === "mangle").map((l) => ({ spec: l.spec })));

  // nat: the blocks of every mark the farms had or will have, then the groups and roots above them.
  for (const role of NAT_ROLES) {
    const kind = role === "DNAT" ? "dnat" : "snat";
    const blocks = new Map<string, { spec: string; mark?: number; farm?: string }[]>();
    for (const m of state.marks) {
      const key = chainKey("nat", markBlockChain(role, m));
      if (blocks.has(key)) continue;
      const kept = (liveOf(key)?.rules ?? []).filter((r) => farmOfRule(r) && !only.has(r.farm!)).map((r) => ({ spec: r.spec, mark: markOfRule(r.spec) ?? 0, farm: r.farm }));
      blocks.set(key, kept);
    }
    for (const { r } of rendered) {
      for (const l of r.rules) {
        if (l.kind !== kind) continue;
        const key = chainKey("nat", l.chain);
        if (!blocks.has(key)) blocks.set(key, []);
        blocks.get(key)!.push({ spec: l.spec, mark: l.mark, farm: l.farm });
      }
    }
    const groupBlocks = new Map<string, Set<number>>();
    const groupOf = (base: number) => chainKey("nat", markGroupChain(role, base));
    for (const key of blocks.keys()) {
      const base = parseMarkChain(key.slice(4))!.base;
      const g = groupOf(base);
      if (groupBlocks.has(g)) continue;
      const bases = new Set<number>();
      for (const r of liveOf(g)?.rules ?? []) {
        const p = r.target ? parseMarkChain(r.target) : null;
        if (p?.level === "block") bases.add(p.base);
      }
      groupBlocks.set(g, bases);
    }
    for (const [key, rules] of blocks) {
      const base = parseMarkChain(key.slice(4))!.base;
      const bases = groupBlocks.get(groupOf(base))!;
      if (rules.length === 0) {
        bases.delete(base);
        continue;
      }
      bases.add(base);
      set("nat", key.slice(4), [...rules].sort(byMarkOrder).map((r) => ({ spec: r.spec })));
    }
    const rootKey = chainKey("nat", NAT_ROOT[role]);
    const groups = new Set<number>();
    for (const r of liveOf(rootKey)?.rules ?? []) {
      const p = r.target ? parseMarkChain(r.target) : null;
      if (p?.level === "group") groups.add(p.base);
    }
    for (const [g, bases] of groupBlocks) {
      const base = parseMarkChain(g.slice(4))!.base;
      if (bases.size === 0) {
        groups.delete(base);
        continue;
      }
      groups.add(base);
      set("nat", g.slice(4), [...bases].sort((a, b) => a - b).map((b) => ({ spec: blockJumpSpec(role, b) })));
    }
    set("nat", NAT_ROOT[role], [...groups].sort((a, b) => a - b).map((b) => ({ spec: groupJumpSpec(role, b) })));
  }

  // mangle: the tree along the paths, from the nodes read and the farms' new places.
  const items: DispatchItem[] = [];
  const farmTargets = new Set([...only].map(farmChain));
  for (const key of state.nodes) {
    for (const r of liveOf(key)?.rules ?? []) {
      const item = itemOfJump(r.spec);
      if (!item || farmTargets.has(item.target) || state.nodes.has(chainKey("mangle", item.target))) continue;
      items.push(item);
    }
  }
  for (const { farm, r } of rendered) if (r.chain) items.push(farmItem(farm, r.chain));
  for (const [name, specs] of buildTree(items)) set("mangle", name, specs.map((spec) => ({ spec })));

  let liveBuiltins = new Map<string, LiveChain>();
  const hooks = new Map<string, string[]>();
  if (view.full) {
    // A full read may meet an empty kernel: the skeleton comes with the first farm.
    for (const [key, rules] of skeletonChains()) {
      liveOf(key);
      desired.set(key, { table: rules[0]!.table, name: rules[0]!.chain, rules: rules.map((l) => ({ spec: l.spec })) });
    }
    liveBuiltins = view.builtins;
    for (const h of hookLines()) {
      const key = chainKey(h.table, h.chain);
      hooks.set(key, [...(hooks.get(key) ?? []), h.spec]);
    }
  }
  for (const key of [...ROOT_KEYS, ...desired.keys()]) liveOf(key);
  return { desired, hooks, live, liveBuiltins };
}
