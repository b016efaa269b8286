import { checkFarmSet, FarmListSchema, FarmSchema, type Farm, type ResolvedFarm } from "../farms/schema.ts";
import { describePath, formatIssues } from "../farms/errors.ts";
import { backendKey } from "../farms/marks.ts";
import { resolveMarks } from "../farms/resolve.ts";
import { isValidatedList, noteValidatedList } from "../farms/validated.ts";
import type { Table } from "../netfilter/layout.ts";
import { describeRule, type LiveChain } from "../netfilter/parse.ts";
import { desiredFromLive, desiredFromRendered, planPhased, type DesiredChain, type Plan, type PlanInput, type PlanStats } from "../netfilter/plan.ts";
import { chainKey, renderRuleset, type DesiredRuleset } from "../netfilter/render.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";
import { ApplyError, FarmValidationError } from "./errors.ts";
import type { HeldLock } from "../sys/flock.ts";
import { beginJournal, type InterruptedApply } from "./journal.ts";
import { checkLocalVips } from "./local-vips.ts";
import { withTargetLock } from "./lock.ts";
import { HOOK_BUILTIN_KEYS, quickViewFromSave, readChains, readFull, readSaves, viewFromSave, type LiveView, type QuickView } from "./read.ts";
import { forgetNodes, hasLegacyChains, noteNodes, readScoped, scopedPlanInput } from "./scoped.ts";
import { rulesetDigest } from "./stamp.ts";

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
  /** Farms whose change this is: only their chains and the dispatch nodes on their paths are read and written. */
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
  /** Tables of the payload in the order they commit (make-before-break: nat, mangle, nat); each may span several sections. */
  tables: Table[];
  /** `*table ... COMMIT` sections of the payload: each commits on its own. */
  sections?: number;
  farms: ResolvedFarm[];
  /** Farms whose rules this apply added, changed or removed (a scoped apply: only farms it names). */
  farmsChanged: string[];
  /** Things the operator should know that did not stop the apply. */
  warnings: string[];
  /** An earlier apply to this target that died before it finished (this one took over from the state it left). */
  interrupted?: InterruptedApply;
  /** A whole apply that left the kernel as wanted, in a process that asked for it (reportDigests): rulesetDigest of natfarm's rules now. */
  digest?: string;
  durationMs: number;
}

/** Whether whole applies report the digest of what they leave (the CLI's stamp, lib/applier/stamp.ts): only a caller that keeps it pays for it. */
let digests = false;
export function reportDigests(on: boolean): void {
  digests = on;
}

function digestOf(chains: Iterable<readonly [string, readonly { spec: string }[]]>, hooks: ReadonlyMap<string, readonly string[]>): string {
  const specs = (function* () {
    for (const [key, rules] of chains) yield [key, rules.map((r) => r.spec)] as const;
  })();
  return rulesetDigest(specs, hooks);
}

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
  if (isValidatedList(input)) return input;
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
  if (!sameAcrossFarms(out)) {
    const issues: string[] = [];
    checkFarmSet(out, (path, message) => issues.push(`${describePath(path, input)}: ${message}`));
    if (issues.length) throw new FarmValidationError(issues);
    lastChecked = new Map(out.map((f) => [f.name, f]));
  }
  noteValidatedList(out);
  return out;
}

/**
 * The last list that passed the checks across farms, by name. A one-farm
 * change re-sends every farm (20,000 at most), and the checks compare farms
 * on a VIP pairwise (at 20,000 farms on 250 VIPs, ~150 ms of CPU per change):
 * a list that holds the same farms, each the very object checked or one
 * whose names, addresses, ports, protocol, status and marks are unchanged
 * (a weight, a state, a mode), cannot break any of those checks.
 */
let lastChecked: Map<string, Farm> | null = null;

const crossFacts = (f: Farm) => JSON.stringify([f.vip, f.protocol, f.ports, f.status, f.backends.map((b) => [b.ip, b.port ?? null, b.mark ?? null])]);

function sameAcrossFarms(out: readonly Farm[]): boolean {
  const last = lastChecked;
  if (!last || last.size !== out.length) return false;
  const seen = new Set<string>();
  const moved: Farm[] = [];
  for (const f of out) {
    // A name twice (and so another missing) is the checks' business.
    if (seen.has(f.name)) return false;
    seen.add(f.name);
    const prev = last.get(f.name);
    if (prev === undefined) return false;
    if (prev !== f) {
      if (crossFacts(prev) !== crossFacts(f)) return false;
      moved.push(f);
    }
  }
  for (const f of moved) last.set(f.name, f);
  return true;
}

/**
 * Farms given their marks by an apply (new objects) are known valid: a
 * caller that passes them back (a one-farm change after a whole apply of a
 * file without marks) finds them by their JSON instead of parsing 20,000
 * farms again (0.5 s of CPU, cold). Kept by text, as a copy: a caller that
 * changes an object afterwards gets it parsed.
 */
function noteResolved(farms: readonly Farm[], resolved: readonly ResolvedFarm[]): void {
  if (resolved === (farms as unknown) || resolved.length > VALIDATED_MAX) return;
  if (validated.size + resolved.length > VALIDATED_MAX) validated.clear();
  for (const r of resolved) {
    const key = JSON.stringify(r);
    if (!validated.has(key)) validated.set(key, JSON.parse(key) as Farm);
  }
}

function strictValidate(input: unknown): Farm[] {
  const parsed = FarmListSchema.safeParse(input);
  if (!parsed.success) throw new FarmValidationError(formatIssues(parsed.error, input));
  noteValidatedList(parsed.data);
  return parsed.data;
}

/** Marks the kernel already gives to backends, so a backend keeps its mark across applies. */
export function marksInKernel(live: Iterable<{ rules: readonly { spec: string; farm?: string }[] }>): Map<string, number> {
  const known = new Map<string, number>();
  for (const chain of live) {
    for (const r of chain.rules) {
      const m = DNAT_TO.exec(r.spec);
      if (m && r.farm) known.set(backendKey(r.farm, m[2]!, m[3] ? Number(m[3]) : null), Number(m[1]));
    }
  }
  return known;
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

/** Per farm, its rules chain by chain in order: what "changed" compares. */
function rulesByFarm(chains: Iterable<{ table: string; name: string; rules: readonly { spec: string; farm?: string }[] }>, farmOf: (spec: string, table: string, chain: string) => string | undefined) {
  const out = new Map<string, string[]>();
  for (const c of chains) {
    for (const r of c.rules) {
      // A rule names its farm only in a comment.
      const farm = r.farm ?? (r.spec.includes("--comment") ? farmOf(r.spec, c.table, c.name) : undefined);
      if (!farm) continue;
      let list = out.get(farm);
      if (!list) out.set(farm, (list = []));
      list.push(`${c.table} ${c.name} ${r.spec}`);
    }
  }
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
    if (w.length !== h.length) out.push(name);
    else {
      w.sort();
      h.sort();
      if (w.some((line, i) => line !== h[i])) out.push(name);
    }
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
async function rollBack(target: Target, before: LiveView, plan: Plan, timeoutMs: number, lock: HeldLock, run: Runner): Promise<string | null> {
  // Chains the refused payload created were not in the snapshot: read them too, so they go.
  const after = await readChains(target, [...before.scope, ...plan.touched], timeoutMs, run);
  const hooks = new Map<string, string[]>();
  for (const [key, chain] of before.builtins) hooks.set(key, chain.rules.filter((r) => r.owned).map((r) => r.spec));
  const desired = desiredFromLive(before.owned);
  const back = planPhased({ desired, hooks, live: after.owned, liveBuiltins: after.builtins, exactOrder: true });
  if (back.empty) return null;
  const r = await restore(target, back.payload, timeoutMs, lock, run);
  if (r.exitCode !== 0) throw new Error(r.stderr.trim() || `exit code ${r.exitCode}`);
  return back.payload;
}

async function applyPlan(target: Target, plan: Plan, before: LiveView, opts: ApplyOptions, timeoutMs: number, lock: HeldLock) {
  const run = opts.runner ?? runPrivileged;
  const payload = opts.injectFault ? withInjectedFault(plan.payload, opts.injectFault) : plan.payload;
  const r = await restore(target, payload, timeoutMs, lock, run);
  if (r.exitCode === 0) return;
  const message = r.stderr.trim() || `iptables-restore exited with code ${r.exitCode}`;
  try {
    const undone = await rollBack(target, before, plan, timeoutMs, lock, run);
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

/**
 * Marks resolved before the kernel was read, still right once it has been:
 * resolveMarks consults the kernel only for backends without a mark, so if
 * none of them is known there, or each is known with the mark guessed, the
 * guess is what resolving against the kernel gives.
 */
function guessHolds(farms: readonly Farm[], guess: readonly ResolvedFarm[], known: ReadonlyMap<string, number>): boolean {
  let seen = 0;
  let unmarked = 0;
  for (let i = 0; i < farms.length; i++) {
    const f = farms[i]!;
    for (let j = 0; j < f.backends.length; j++) {
      const b = f.backends[j]!;
      if (b.mark !== undefined) continue;
      unmarked++;
      const k = known.get(backendKey(f.name, b.ip, b.port));
      if (k === undefined) continue;
      if (k !== guess[i]!.backends[j]!.mark) return false;
      seen++;
    }
  }
  return seen === 0 || seen === unmarked;
}

/** Whether the kernel's natfarm chains and hooks (a quick read) are exactly the desired ones. */
function unchangedAgainst(desired: DesiredRuleset, quick: QuickView): boolean {
  if (quick.owned.size !== desired.chains.size) return false;
  for (const [key, rules] of desired.chains) {
    const live = quick.owned.get(key);
    if (!live || live.length !== rules.length) return false;
    for (let i = 0; i < rules.length; i++) if (rules[i]!.spec !== live[i]) return false;
  }
  const hooks = hooksOf(desired);
  for (const key of HOOK_BUILTIN_KEYS) {
    const want = [...(hooks.get(key) ?? [])].sort();
    const have = [...(quick.hooks.get(key) ?? [])].sort();
    if (want.length !== have.length || want.some((spec, i) => spec !== have[i])) return false;
  }
  return true;
}

/** Up to this many farms a scoped change reads both tables whole (a save per table) rather than chain by chain. */
const SMALL_SET = 100;

const NO_CHANGE: Plan = { payload: "", empty: true, stats: { chainsCreated: 0, chainsRewritten: 0, chainsDeleted: 0, rulesAdded: 0, rulesDeleted: 0 }, tables: [], sections: 0, touched: [] };

/** The apply of a farm set the caller has validated with the shared schema itself (the agent's incremental check). */
export async function applyValidated(farms: Farm[], opts: ApplyOptions): Promise<ApplyResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const run = opts.runner ?? runPrivileged;
  return withTargetLock(opts.target, timeoutMs, async (lock) => {
    const started = performance.now();
    const journal = beginJournal(opts.target, lock);
    // A whole apply reads both tables whatever it finds: the reads start at once, and while they
    // run the farms are rendered with the marks guessed without the kernel (checked against it after).
    const early = opts.only ? null : readSaves(opts.target, timeoutMs, run);
    const guess = !opts.only && !journal.interrupted ? resolveMarks(farms) : null;
    const guessed = guess ? renderRuleset(guess) : null;
    // Removing the last farm takes the skeleton away, which only a full apply plans.
    let only = opts.only && farms.some((f) => f.status === "up") ? new Set(opts.only) : null;
    const allMarked = farms.every((f) => f.backends.every((b) => b.mark !== undefined));
    const checked = only ? farms.filter((f) => only!.has(f.name)) : farms;
    // After an interrupted apply the kernel may hold a half-done change of any farm: read it all.
    // A small set is read whole too: two saves cost less than listing its farm's chains one by one.
    const cheap = only && allMarked && !journal.interrupted && farms.length > SMALL_SET ? (farms as unknown as ResolvedFarm[]) : null;
    const [warnings, scopedRead, saves] = await Promise.all([
      checkLocalVips(opts.target, checked, timeoutMs, run),
      cheap ? readScoped(opts.target, cheap, only!, timeoutMs, run) : null,
      cheap ? null : (early ?? readSaves(opts.target, timeoutMs, run)),
    ]);
    // A whole apply first compares the rendered rules with the save texts as text: an unchanged
    // kernel (the usual re-apply) is told without building the full view or a plan.
    let rendered: { resolved: ResolvedFarm[]; desired: DesiredRuleset } | null = null;
    let unchanged = false;
    if (saves && !only && !journal.interrupted) {
      const quick = quickViewFromSave(saves);
      const known = marksInKernel([{ rules: quick.dnat.map((d) => describeRule("nat", d.chain, d.spec, 0, 0)) }]);
      if (guess && guessed && guessHolds(farms, guess, known)) rendered = { resolved: guess, desired: guessed };
      else {
        const resolved = resolveMarks(farms, known);
        rendered = { resolved, desired: renderRuleset(resolved) };
      }
      unchanged = unchangedAgainst(rendered.desired, quick);
      noteNodes(opts.target, quick.owned.keys(), [], true);
    }
    let live: LiveView = unchanged ? { owned: new Map(), builtins: new Map(), scope: new Set(), full: true } : (scopedRead ?? (saves ? viewFromSave(saves) : await readFull(opts.target, timeoutMs, run)));
    if (live.full && !unchanged && !rendered) noteNodes(opts.target, live.owned.keys(), [], true);
    // A kernel still in the layout before dispatch by destination is moved over whole.
    if (only && live.full && hasLegacyChains(live)) only = null;
    const resolved = rendered?.resolved ?? resolveMarks(farms, marksInKernel(live.owned.values()));
    if (!opts.dryRun) noteResolved(farms, resolved);
    const plan = async (view: LiveView, desired?: DesiredRuleset) => {
      const inputs = only ? await scopedPlanInput(view, resolved, only) : fullPlanInput(desired ?? renderRuleset(resolved), view);
      return { inputs, plan: planPhased(inputs) };
    };
    let { inputs, plan: p } = unchanged ? { inputs: null, plan: NO_CHANGE } : await plan(live, rendered?.desired);
    const result: ApplyResult = {
      changed: !p.empty,
      mode: only ? "scoped" : "full",
      payload: p.payload,
      stats: p.stats,
      tables: p.tables,
      sections: p.sections,
      farms: resolved,
      farmsChanged: [],
      warnings,
      durationMs: 0,
    };
    // An empty plan changes no farm; otherwise which farms changed is worked out while the kernel takes the payload.
    const farmsChangedOf = (i: PlanInput | null, q: Plan) => (i && !q.empty ? changedFarms(i, only) : []);
    if (journal.interrupted) warnings.unshift(journal.interrupted.message);
    if (journal.interrupted) result.interrupted = journal.interrupted;
    const whole = digests && !only && !opts.dryRun;
    if (p.empty || opts.dryRun) {
      result.farmsChanged = farmsChangedOf(inputs, p);
      if (whole) result.digest = inputs ? digestOf([...inputs.desired].map(([k, c]) => [k, c.rules] as const), inputs.hooks) : digestOf(rendered!.desired.chains.entries(), hooksOf(rendered!.desired));
    } else {
      journal.write({ farms: farms.length, only: only ? [...only] : null, tables: p.tables });
      try {
        try {
          const writing = applyPlan(opts.target, p, live, opts, timeoutMs, lock);
          result.farmsChanged = farmsChangedOf(inputs, p);
          // Worked out while the kernel takes the payload; only kept once it has.
          const digest = whole && inputs ? digestOf([...inputs.desired].map(([k, c]) => [k, c.rules] as const), inputs.hooks) : undefined;
          await writing;
          if (digest) result.digest = digest;
        } catch (e) {
          // A scoped payload that met a kernel unlike the cheap read assumed was undone: plan again from a full read.
          if (live.full || !(e instanceof ApplyError) || e.rolledBack === "rollback-failed") throw e;
          live = await readFull(opts.target, timeoutMs, run);
          ({ inputs, plan: p } = await plan(live));
          Object.assign(result, { payload: p.payload, stats: p.stats, tables: p.tables, sections: p.sections, changed: !p.empty, farmsChanged: farmsChangedOf(inputs, p) });
          if (!p.empty) await applyPlan(opts.target, p, live, opts, timeoutMs, lock);
        }
        if (inputs) noteNodes(opts.target, inputs.desired.keys(), [...inputs.live.keys()].filter((k) => !inputs!.desired.has(k)));
      } catch (e) {
        forgetNodes(opts.target);
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
