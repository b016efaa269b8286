import { checkFarmSet, FarmListSchema, FarmSchema, type Farm, type ResolvedFarm } from "../farms/schema.ts";
import { describePath, formatIssues } from "../farms/errors.ts";
import { backendKey } from "../farms/marks.ts";
import { resolveMarks } from "../farms/resolve.ts";
import { HOOKS, parseShardChain, SHARD_ENTRY, SHARD_ROLES, SHARD_TABLE, shardChain, shardOf, shardOfChain, type Table } from "../netfilter/layout.ts";
import { describeRule, type LiveChain } from "../netfilter/parse.ts";
import {
  desiredFromLive,
  desiredFromRendered,
  planChanges,
  type DesiredChain,
  type Plan,
  type PlanInput,
  type PlanStats,
} from "../netfilter/plan.ts";
import { chainKey, ENTRY_FRAME, entryFrameIntact, renderRuleset, shardJumpSpec, type DesiredRuleset } from "../netfilter/render.ts";
import { runPrivileged } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";
import { ApplyError, FarmValidationError } from "./errors.ts";
import { withTargetLock } from "./lock.ts";
import { HOOK_BUILTIN_KEYS, readChains, readFull, type LiveView } from "./read.ts";

/**
 * The rule applier: validated farms in, one atomic `iptables-restore
 * --noflush` per table out, and nothing else touched. iptables commits each
 * table of a payload on its own, so when a later table is refused the tables
 * already committed are put back from the snapshot read before the change.
 */
export interface ApplyOptions {
  target: Target;
  /** Farms whose change this is: only their shard chains (and their entry jumps) are read and written. */
  only?: readonly string[];
  timeoutMs?: number;
  dryRun?: boolean;
  /** Test hook: add a rule iptables refuses to this table's part of the payload. */
  injectFault?: Table;
}

export interface ApplyResult {
  changed: boolean;
  mode: "full" | "scoped";
  payload: string;
  stats: PlanStats;
  tables: Table[];
  farms: ResolvedFarm[];
  durationMs: number;
}

const ENTRY_KEYS = HOOKS.map((h) => chainKey(h.table, h.chain));
const DNAT_TO = /-m mark --mark (0x[0-9a-f]+) .*-j DNAT --to-destination ([0-9.]+)(?::(\d+))?$/;

/**
 * The applier's own boundary check, with the shared schema. A long-running
 * console re-applies thousands of unchanged farms for every one-farm change,
 * so farms already validated (same JSON) are not parsed again; the checks
 * across farms (names, VIP+port overlaps, marks) always run.
 */
const validated = new Map<string, Farm>();
const VALIDATED_MAX = 50_000;
/** Callers that keep their farm objects (the bench, a long-lived caller) skip even the JSON key. */
const validatedObjects = new WeakMap<object, Farm>();

export function validateFarms(input: unknown): Farm[] {
  if (!Array.isArray(input)) return strictValidate(input);
  const out: Farm[] = [];
  for (const item of input) {
    const known = item !== null && typeof item === "object" ? validatedObjects.get(item) : undefined;
    if (known) {
      out.push(known);
      continue;
    }
    const key = JSON.stringify(item);
    let farm = validated.get(key);
    if (!farm) {
      const one = FarmSchema.safeParse(item);
      if (!one.success) return strictValidate(input);
      farm = one.data;
      if (validated.size >= VALIDATED_MAX) validated.clear();
      validated.set(key, farm);
    }
    if (item !== null && typeof item === "object") validatedObjects.set(item, farm);
    out.push(farm);
  }
  const issues: string[] = [];
  checkFarmSet(out, (path, message) => issues.push(`${describePath(path, input)}: ${message}`));
  if (issues.length) throw new FarmValidationError(issues);
  return out;
}

function strictValidate(input: unknown): Farm[] {
  const parsed = FarmListSchema.safeParse(input);
  if (!parsed.success) throw new FarmValidationError(formatIssues(parsed.error, input));
  return parsed.data;
}

/** Marks the kernel already gives to backends, so a backend keeps its mark across applies. */
export function marksInKernel(live: Iterable<LiveChain>): Map<string, number> {
  const known = new Map<string, number>();
  for (const chain of live) {
    for (const r of chain.rules) {
      const m = DNAT_TO.exec(r.spec);
      if (m && r.farm) known.set(backendKey(r.farm, m[2]!, m[3] ? Number(m[3]) : null), Number(m[1]));
    }
  }
  return known;
}

/** A scoped read is only trusted when natfarm's skeleton (hooks and entry-chain frames) is intact. */
function skeletonIntact(live: LiveView): boolean {
  for (const key of ENTRY_KEYS) {
    const chain = live.owned.get(key);
    if (!chain || !entryFrameIntact(key, chain.rules)) return false;
  }
  for (const h of HOOKS) {
    const builtin = live.builtins.get(chainKey(h.table, h.builtin));
    if (!builtin?.rules.some((r) => r.target === h.chain)) return false;
  }
  return true;
}

/**
 * The state a scoped change needs, read as cheaply as possible. natfarm
 * writes a shard chain, its entry jump and the skeleton in one transaction,
 * so when one of the changed shards exists the skeleton and that shard's
 * jumps are taken as present (a hand-made break shows up as drift, and a
 * payload that meets a missing chain fails and falls back to a full apply).
 * Only when none exists yet are the entry chains and hooks read and checked.
 */
async function readScoped(target: Target, shards: ReadonlySet<number>, timeoutMs: number): Promise<LiveView | null> {
  const shardKeys = [...shards].flatMap((shard) => SHARD_ROLES.map((role) => chainKey(SHARD_TABLE[role], shardChain(role, shard))));
  const view = await readChains(target, shardKeys, timeoutMs);
  if (view.owned.size === 0) {
    const skeleton = await readChains(target, [...ENTRY_KEYS, ...HOOK_BUILTIN_KEYS], timeoutMs);
    if (!skeletonIntact(skeleton)) return null;
    for (const [k, c] of skeleton.owned) view.owned.set(k, c);
    for (const [k, c] of skeleton.builtins) view.builtins.set(k, c);
    for (const k of skeleton.scope) view.scope.add(k);
    return view;
  }
  for (const h of HOOKS) {
    const key = chainKey(h.table, h.chain);
    const { head, tail } = ENTRY_FRAME[key]!;
    const jumps = [...view.owned.values()]
      .map((c) => ({ c, s: parseShardChain(c.name) }))
      .filter(({ c, s }) => s && c.table === h.table && SHARD_ENTRY[s.role] === h.chain)
      .map(({ s }) => shardJumpSpec(s!.role, s!.shard));
    const rules = [...head, ...jumps, ...tail].map((spec) => describeRule(h.table, h.chain, spec, 0, 0));
    view.owned.set(key, { table: h.table, name: h.chain, policy: null, builtin: false, owned: true, rules });
    view.scope.add(key);
    (view.synthetic ??= new Set()).add(key);
  }
  return view;
}

/**
 * An entry chain where only the jumps into `shards` come from `wanted`: jumps
 * into every other shard stay as they are in `base` (the kernel).
 */
function mergeEntry(key: string, base: readonly { spec: string }[], wanted: readonly { spec: string }[], shards: ReadonlySet<number>) {
  const { head, tail } = ENTRY_FRAME[key]!;
  const inChange = (spec: string) => {
    const shard = shardOfChain(/-j (\S+)$/.exec(spec)?.[1] ?? "");
    return shard !== null && shards.has(shard);
  };
  const middle = (rules: readonly { spec: string }[]) => rules.slice(head.length, rules.length - tail.length).map((r) => r.spec);
  const kept = middle(base).filter((spec) => !inChange(spec));
  const mine = middle(wanted).filter(inChange);
  return [...head, ...kept, ...mine, ...tail].map((spec) => ({ spec }));
}

function planInput(desired: DesiredRuleset, live: LiveView, scopedShards: ReadonlySet<number> | null): PlanInput {
  const want = desiredFromRendered(desired.chains);
  const inScope = new Map<string, DesiredChain>();
  for (const [key, chain] of want) if (live.full || live.scope.has(key)) inScope.set(key, chain);
  if (scopedShards) {
    for (const key of ENTRY_KEYS) {
      const chain = inScope.get(key);
      const current = live.owned.get(key);
      if (chain && current) chain.rules = mergeEntry(key, current.rules, chain.rules, scopedShards);
    }
  }
  const hooks = new Map<string, string[]>();
  for (const h of desired.hooks) {
    const key = chainKey(h.table, h.chain);
    hooks.set(key, [...(hooks.get(key) ?? []), h.spec]);
  }
  return { desired: inScope, hooks, live: live.owned, liveBuiltins: live.builtins };
}

function withInjectedFault(payload: string, table: Table): string {
  const bad = "-A NATFARM-PREROUTING -m comment --comment \"natfarm: injected fault\" -j NATFARM-INJECTED-FAULT";
  const lines = payload.split("\n").filter((l) => l !== "");
  const start = lines.indexOf(`*${table}`);
  if (start === -1) return `${payload}*${table}\n${bad}\nCOMMIT\n`;
  const commit = lines.indexOf("COMMIT", start);
  lines.splice(commit, 0, bad);
  return `${lines.join("\n")}\n`;
}

async function restore(target: Target, payload: string, timeoutMs: number) {
  return runPrivileged("iptables-restore", ["--noflush", "-w", "10", "-c"], { target, input: payload, timeoutMs, allowFailure: true });
}

/** After a refused payload: put every table that changed back to the snapshot. */
async function rollBack(target: Target, before: LiveView, plan: Plan, shards: ReadonlySet<number> | null, timeoutMs: number): Promise<string | null> {
  // Chains the refused payload created were not in the snapshot: read them too, so they go.
  const after = await readChains(target, [...before.scope, ...plan.touched], timeoutMs);
  const hooks = new Map<string, string[]>();
  for (const [key, chain] of before.builtins) hooks.set(key, chain.rules.filter((r) => r.owned).map((r) => r.spec));
  const desired = desiredFromLive(before.owned);
  // A synthesized entry chain knew only the changed shards' jumps: put back just those.
  for (const key of before.synthetic ?? []) {
    const now = after.owned.get(key);
    const was = desired.get(key);
    if (now && was && shards) was.rules = mergeEntry(key, now.rules, was.rules, shards);
  }
  const back = planChanges({ desired, hooks, live: after.owned, liveBuiltins: after.builtins });
  if (back.empty) return null;
  const r = await restore(target, back.payload, timeoutMs);
  if (r.exitCode !== 0) throw new Error(r.stderr.trim() || `exit code ${r.exitCode}`);
  return back.payload;
}

async function applyPlan(target: Target, plan: Plan, before: LiveView, shards: ReadonlySet<number> | null, opts: ApplyOptions, timeoutMs: number) {
  const payload = opts.injectFault ? withInjectedFault(plan.payload, opts.injectFault) : plan.payload;
  const r = await restore(target, payload, timeoutMs);
  if (r.exitCode === 0) return;
  const message = r.stderr.trim() || `iptables-restore exited with code ${r.exitCode}`;
  try {
    const undone = await rollBack(target, before, plan, shards, timeoutMs);
    throw new ApplyError(message, undone ? "rolled-back" : "nothing-committed", payload);
  } catch (e) {
    if (e instanceof ApplyError) throw e;
    throw new ApplyError(message, "rollback-failed", payload, (e as Error).message);
  }
}

/** The planner's input for a full comparison of desired farms against a full read. */
export function desiredPlanInput(desired: DesiredRuleset, live: LiveView): PlanInput {
  return planInput(desired, live, null);
}

export async function applyFarms(input: unknown, opts: ApplyOptions): Promise<ApplyResult> {
  const farms = validateFarms(input);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return withTargetLock(opts.target, timeoutMs, async () => {
    const started = performance.now();
    // Removing the last farm takes the skeleton away, which only a full read can plan.
    const shards = opts.only && farms.some((f) => f.status === "up") ? new Set(opts.only.map(shardOf)) : null;
    const allMarked = farms.every((f) => f.backends.every((b) => b.mark !== undefined));
    let live: LiveView | null = null;
    let scoped: Set<number> | null = null;
    if (shards && allMarked) {
      live = await readScoped(opts.target, shards, timeoutMs);
      if (live) scoped = shards;
    }
    live ??= await readFull(opts.target, timeoutMs);
    const resolved = resolveMarks(farms, marksInKernel(live.owned.values()));
    // A scoped change renders only the farms that share the changed shards.
    const desired = scoped ? renderRuleset(resolved.filter((f) => scoped.has(shardOf(f.name))), { keepSkeleton: true }) : renderRuleset(resolved);
    const plan = planChanges(planInput(desired, live, scoped));
    const result: ApplyResult = {
      changed: !plan.empty,
      mode: scoped ? "scoped" : "full",
      payload: plan.payload,
      stats: plan.stats,
      tables: plan.tables,
      farms: resolved,
      durationMs: 0,
    };
    if (!plan.empty && !opts.dryRun) {
      try {
        await applyPlan(opts.target, plan, live, scoped, opts, timeoutMs);
      } catch (e) {
        // A scoped payload that meets a kernel unlike what it assumed is undone; a full apply then repairs or reports.
        if (!scoped || !(e instanceof ApplyError) || e.rolledBack === "rollback-failed") throw e;
        const full = await readFull(opts.target, timeoutMs);
        const fullPlan = planChanges(planInput(renderRuleset(resolved), full, null));
        Object.assign(result, { mode: "full", payload: fullPlan.payload, stats: fullPlan.stats, tables: fullPlan.tables, changed: !fullPlan.empty });
        if (!fullPlan.empty) await applyPlan(opts.target, fullPlan, full, null, opts, timeoutMs);
      }
    }
    result.durationMs = performance.now() - started;
    return result;
  });
}

/** Removes every natfarm rule and chain from the target, and nothing else. */
export async function flushFarms(opts: Omit<ApplyOptions, "only">): Promise<ApplyResult> {
  return applyFarms([], opts);
}
