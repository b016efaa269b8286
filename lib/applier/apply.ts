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
  planPhased,
  type DesiredChain,
  type PlannedRule,
  type Plan,
  type PlanInput,
  type PlanStats,
} from "../netfilter/plan.ts";
import { chainKey, ENTRY_FRAME, entryFrameIntact, renderRuleset, shardJumpSpec, type DesiredRuleset } from "../netfilter/render.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";
import { ApplyError, FarmValidationError } from "./errors.ts";
import type { HeldLock } from "../sys/flock.ts";
import { beginJournal, type InterruptedApply } from "./journal.ts";
import { checkLocalVips } from "./local-vips.ts";
import { withTargetLock } from "./lock.ts";
import { HOOK_BUILTIN_KEYS, readChains, readFull, type LiveView } from "./read.ts";

/**
 * The rule applier: validated farms in, one `iptables-restore --noflush` out,
 * and nothing else touched. iptables commits each table section of a payload
 * on its own, so the sections go make-before-break (planPhased): whatever
 * prefix of them is in force — a later one refused, or the process killed —
 * every mark mangle sets has its translation in nat. A refused section has
 * the committed ones put back from the snapshot read before the change; a
 * killed apply is completed by the next one (which plans from the kernel as
 * it is) and reported by the journal it left.
 */
export interface ApplyOptions {
  target: Target;
  /** Farms whose change this is: only their shard chains (and their entry jumps) are read and written. */
  only?: readonly string[];
  timeoutMs?: number;
  dryRun?: boolean;
  /** The kernel side (default: the real programs); tests pass a recording fake. */
  runner?: Runner;
  /** Test hook: add a rule iptables refuses to this table's first section of the payload, or to its last section. */
  injectFault?: Table | "last";
}

export interface ApplyResult {
  changed: boolean;
  mode: "full" | "scoped";
  payload: string;
  stats: PlanStats;
  /** Table sections of the payload, in the order they commit. */
  tables: Table[];
  farms: ResolvedFarm[];
  /** Farms whose rules this apply added, changed or removed (a scoped apply: only farms it names). */
  farmsChanged: string[];
  /** Things the operator should know that did not stop the apply. */
  warnings: string[];
  /** An earlier apply to this target that died before it finished (this one took over from the state it left). */
  interrupted?: InterruptedApply;
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
async function readScoped(target: Target, shards: ReadonlySet<number>, timeoutMs: number, run: Runner): Promise<LiveView | null> {
  const shardKeys = [...shards].flatMap((shard) => SHARD_ROLES.map((role) => chainKey(SHARD_TABLE[role], shardChain(role, shard))));
  const view = await readChains(target, shardKeys, timeoutMs, run);
  if (view.owned.size === 0) {
    const skeleton = await readChains(target, [...ENTRY_KEYS, ...HOOK_BUILTIN_KEYS], timeoutMs, run);
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

/** The shard a jump rule of an entry chain goes to, or null. */
function jumpShard(spec: string): number | null {
  return shardOfChain(/-j (\S+)$/.exec(spec)?.[1] ?? "");
}

/**
 * An entry chain for a scoped change: its frame, the jumps into other shards
 * as `base` (the kernel) has them, and jumps into the changed shards that
 * hold rules.
 */
function mergeEntry(key: string, base: readonly { spec: string }[], holding: ReadonlySet<string>, shards: ReadonlySet<number>): PlannedRule[] {
  const { head, tail } = ENTRY_FRAME[key]!;
  const [table, chain] = key.split(" ") as [Table, string];
  const kept = base.map((r) => r.spec).filter((spec) => {
    const shard = jumpShard(spec);
    return shard !== null && !shards.has(shard);
  });
  const mine = SHARD_ROLES.filter((role) => SHARD_TABLE[role] === table && SHARD_ENTRY[role] === chain).flatMap((role) =>
    [...shards].sort((a, b) => a - b).filter((s) => holding.has(chainKey(table, shardChain(role, s)))).map((s) => shardJumpSpec(role, s)),
  );
  return [...head, ...kept, ...mine, ...tail].map((spec) => ({ spec }));
}

/**
 * The entry chain a rollback goes back to when only the changed shards'
 * jumps were known: the chain as it is now, in its order, with the changed
 * shards' jumps as they were (present where their shard held rules).
 */
function entryAsBefore(key: string, now: readonly { spec: string }[], holding: ReadonlySet<string>, shards: ReadonlySet<number>): PlannedRule[] {
  const { head, tail } = ENTRY_FRAME[key]!;
  const merged = mergeEntry(key, now, holding, shards).map((r) => r.spec);
  const jumps = merged.slice(head.length, merged.length - tail.length);
  const wanted = new Set(jumps);
  const kept = now.map((r) => r.spec).filter((spec) => jumpShard(spec) !== null && wanted.delete(spec));
  return [...head, ...kept, ...wanted, ...tail].map((spec) => ({ spec }));
}

function hooksOf(desired: DesiredRuleset): Map<string, string[]> {
  const hooks = new Map<string, string[]>();
  for (const h of desired.hooks) {
    const key = chainKey(h.table, h.chain);
    hooks.set(key, [...(hooks.get(key) ?? []), h.spec]);
  }
  return hooks;
}

function fullPlanInput(desired: DesiredRuleset, live: LiveView): PlanInput {
  const want = desiredFromRendered(desired.chains);
  const inScope = new Map<string, DesiredChain>();
  for (const [key, chain] of want) if (live.full || live.scope.has(key)) inScope.set(key, chain);
  return { desired: inScope, hooks: hooksOf(desired), live: live.owned, liveBuiltins: live.builtins };
}

/**
 * A change to the farms in `only` and nothing else: in each of their shard
 * chains the other farms keep exactly the rules the kernel has for them (a
 * farm the database holds as pending is never written as a side effect), the
 * named farms get their rendered rules, and farms stay grouped in name order
 * as a full render orders them. Rules in a shard that no farm owns go.
 */
function scopedPlanInput(rendered: DesiredRuleset, live: LiveView, only: ReadonlySet<string>, shards: ReadonlySet<number>): PlanInput {
  const desired = new Map<string, DesiredChain>();
  const liveInScope = new Map<string, LiveChain>();
  for (const shard of shards) {
    for (const role of SHARD_ROLES) {
      const table = SHARD_TABLE[role];
      const name = shardChain(role, shard);
      const key = chainKey(table, name);
      const current = live.owned.get(key);
      if (current) liveInScope.set(key, current);
      const groups = new Map<string, { spec: string }[]>();
      const add = (farm: string, spec: string) => {
        let g = groups.get(farm);
        if (!g) groups.set(farm, (g = []));
        g.push({ spec });
      };
      for (const r of current?.rules ?? []) if (r.farm && !only.has(r.farm)) add(r.farm, r.spec);
      for (const r of rendered.chains.get(key) ?? []) add(r.farm!, r.spec);
      if (groups.size === 0) continue;
      const rules = [...groups.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).flatMap((f) => groups.get(f)!);
      desired.set(key, { table, name, rules });
    }
  }
  const holding = new Set(desired.keys());
  for (const key of ENTRY_KEYS) {
    const [table, name] = key.split(" ") as [Table, string];
    const current = live.owned.get(key);
    if (current) liveInScope.set(key, current);
    desired.set(key, { table, name, rules: mergeEntry(key, current?.rules ?? [], holding, shards) });
  }
  return { desired, hooks: hooksOf(rendered), live: liveInScope, liveBuiltins: live.builtins };
}

/** Per farm, its rules chain by chain in order: what "changed" compares. */
function rulesByFarm(chains: Iterable<{ table: string; name: string; rules: readonly { spec: string; farm?: string }[] }>, farmOf: (spec: string, table: string, chain: string) => string | undefined) {
  const out = new Map<string, string[]>();
  for (const c of chains) {
    for (const r of c.rules) {
      const farm = r.farm ?? farmOf(r.spec, c.table, c.name);
      if (!farm) continue;
      let list = out.get(farm);
      if (!list) out.set(farm, (list = []));
      list.push(`${c.table} ${c.name} ${r.spec}`);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

function changedFarms(input: PlanInput, only: ReadonlySet<string> | null): string[] {
  const farmOf = (spec: string, table: string, chain: string) => describeRule(table, chain, spec, 0, 0).farm;
  const want = rulesByFarm([...input.desired.values()], farmOf);
  const have = rulesByFarm([...input.live.values()], farmOf);
  const names = new Set([...want.keys(), ...have.keys()]);
  const out: string[] = [];
  for (const name of names) {
    if (only && !only.has(name)) continue;
    const w = want.get(name) ?? [];
    const h = have.get(name) ?? [];
    if (w.length !== h.length || w.some((line, i) => line !== h[i])) out.push(name);
  }
  return out.sort();
}

function withInjectedFault(payload: string, where: Table | "last"): string {
  const bad = "-A NATFARM-PREROUTING -m comment --comment \"natfarm: injected fault\" -j NATFARM-INJECTED-FAULT";
  const lines = payload.split("\n").filter((l) => l !== "");
  const table = where === "last" ? (lines.findLast((l) => l.startsWith("*"))?.slice(1) ?? "nat") : where;
  const start = where === "last" ? lines.lastIndexOf(`*${table}`) : lines.indexOf(`*${table}`);
  if (start === -1) return `${payload}*${table}\n${bad}\nCOMMIT\n`;
  const commit = lines.indexOf("COMMIT", start);
  lines.splice(commit, 0, bad);
  return `${lines.join("\n")}\n`;
}

/**
 * The restore inherits the lock and reads its payload from a file: if this
 * process dies mid-apply, the restore still reads and commits all of it, and
 * nobody else writes until it has ended.
 */
async function restore(target: Target, payload: string, timeoutMs: number, lock: HeldLock, run: Runner) {
  return run("iptables-restore", ["--noflush", "-w", "10", "-c"], { target, input: payload, inputAsFile: true, timeoutMs, allowFailure: true, holdFd: lock.fd });
}

/** After a refused payload: put every table that changed back to the snapshot, make-before-break as well. */
async function rollBack(target: Target, before: LiveView, plan: Plan, shards: ReadonlySet<number> | null, timeoutMs: number, lock: HeldLock, run: Runner): Promise<string | null> {
  // Chains the refused payload created were not in the snapshot: read them too, so they go.
  const after = await readChains(target, [...before.scope, ...plan.touched], timeoutMs, run);
  const hooks = new Map<string, string[]>();
  for (const [key, chain] of before.builtins) hooks.set(key, chain.rules.filter((r) => r.owned).map((r) => r.spec));
  const desired = desiredFromLive(before.owned);
  // A synthesized entry chain knew only the changed shards' jumps: put back just those.
  for (const key of before.synthetic ?? []) {
    const now = after.owned.get(key);
    const was = desired.get(key);
    if (now && was && shards) {
      const holding = new Set([...shards].flatMap((s) => SHARD_ROLES.map((role) => chainKey(SHARD_TABLE[role], shardChain(role, s)))).filter((k) => before.owned.has(k)));
      was.rules = entryAsBefore(key, now.rules, holding, shards);
    }
  }
  const back = planPhased({ desired, hooks, live: after.owned, liveBuiltins: after.builtins, exactOrder: true });
  if (back.empty) return null;
  const r = await restore(target, back.payload, timeoutMs, lock, run);
  if (r.exitCode !== 0) throw new Error(r.stderr.trim() || `exit code ${r.exitCode}`);
  return back.payload;
}

async function applyPlan(target: Target, plan: Plan, before: LiveView, shards: ReadonlySet<number> | null, opts: ApplyOptions, timeoutMs: number, lock: HeldLock) {
  const run = opts.runner ?? runPrivileged;
  const payload = opts.injectFault ? withInjectedFault(plan.payload, opts.injectFault) : plan.payload;
  const r = await restore(target, payload, timeoutMs, lock, run);
  if (r.exitCode === 0) return;
  const message = r.stderr.trim() || `iptables-restore exited with code ${r.exitCode}`;
  try {
    const undone = await rollBack(target, before, plan, shards, timeoutMs, lock, run);
    throw new ApplyError(message, undone ? "rolled-back" : "nothing-committed", payload);
  } catch (e) {
    if (e instanceof ApplyError) throw e;
    throw new ApplyError(message, "rollback-failed", payload, (e as Error).message);
  }
}

/** The planner's input for a full comparison of desired farms against a full read. */
export function desiredPlanInput(desired: DesiredRuleset, live: LiveView): PlanInput {
  return fullPlanInput(desired, live);
}

export async function applyFarms(input: unknown, opts: ApplyOptions): Promise<ApplyResult> {
  return applyValidated(validateFarms(input), opts);
}

/** The apply of a farm set the caller has validated with the shared schema itself (the agent's incremental check). */
export async function applyValidated(farms: Farm[], opts: ApplyOptions): Promise<ApplyResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return withTargetLock(opts.target, timeoutMs, async (lock) => {
    const started = performance.now();
    const journal = beginJournal(opts.target, lock);
    // Removing the last farm takes the skeleton away, which only a full apply plans.
    const only = opts.only && farms.some((f) => f.status === "up") ? new Set(opts.only) : null;
    const shards = only ? new Set([...only].map(shardOf)) : null;
    const allMarked = farms.every((f) => f.backends.every((b) => b.mark !== undefined));
    const checked = only ? farms.filter((f) => only.has(f.name)) : farms;
    const run = opts.runner ?? runPrivileged;
    const [warnings, scopedRead] = await Promise.all([
      checkLocalVips(opts.target, checked, timeoutMs, run),
      shards && allMarked ? readScoped(opts.target, shards, timeoutMs, run) : null,
    ]);
    let live = scopedRead ?? (await readFull(opts.target, timeoutMs, run));
    const resolved = resolveMarks(farms, marksInKernel(live.owned.values()));
    const plan = (view: LiveView) => {
      const inputs = only ? scopedPlanInput(renderRuleset(resolved.filter((f) => only.has(f.name)), { keepSkeleton: true }), view, only, shards!) : fullPlanInput(renderRuleset(resolved), view);
      return { inputs, plan: planPhased(inputs) };
    };
    let { inputs, plan: p } = plan(live);
    const result: ApplyResult = {
      changed: !p.empty,
      mode: only ? "scoped" : "full",
      payload: p.payload,
      stats: p.stats,
      tables: p.tables,
      farms: resolved,
      farmsChanged: changedFarms(inputs, only),
      warnings,
      durationMs: 0,
    };
    if (journal.interrupted) warnings.unshift(journal.interrupted.message);
    if (journal.interrupted) result.interrupted = journal.interrupted;
    if (!p.empty && !opts.dryRun) {
      journal.write({ farms: farms.length, only: only ? [...only] : null, tables: p.tables });
      try {
        try {
          await applyPlan(opts.target, p, live, live.full ? null : shards, opts, timeoutMs, lock);
        } catch (e) {
          // A scoped payload that met a kernel unlike the cheap read assumed was undone: plan again from a full read.
          if (live.full || !(e instanceof ApplyError) || e.rolledBack === "rollback-failed") throw e;
          live = await readFull(opts.target, timeoutMs, run);
          ({ inputs, plan: p } = plan(live));
          Object.assign(result, { payload: p.payload, stats: p.stats, tables: p.tables, changed: !p.empty, farmsChanged: changedFarms(inputs, only) });
          if (!p.empty) await applyPlan(opts.target, p, live, null, opts, timeoutMs, lock);
        }
      } catch (e) {
        // Refused and put back: nothing is half done. A failed put-back leaves the journal for the next apply to report.
        if (!(e instanceof ApplyError && e.rolledBack === "rollback-failed")) journal.finish(false);
        throw e;
      }
    }
    if (!opts.dryRun) journal.finish(true);
    result.durationMs = performance.now() - started;
    return result;
  });
}

/** Removes every natfarm rule and chain from the target, and nothing else. */
export async function flushFarms(opts: Omit<ApplyOptions, "only">): Promise<ApplyResult> {
  return applyFarms([], opts);
}
