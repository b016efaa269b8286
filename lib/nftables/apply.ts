import { randomInt } from "node:crypto";
import { ApplyError } from "../applier/errors.ts";
import { validateFarms } from "../applier/apply.ts";
import { checkLocalVips } from "../applier/local-vips.ts";
import { withTargetLock } from "../applier/lock.ts";
import { resolveMarks } from "../farms/resolve.ts";
import type { Farm, ResolvedFarm } from "../farms/schema.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { parseNftJson, type LiveNft } from "./json.ts";
import { enableNftSessions } from "./session.ts";
import { BASE_CHAIN_NAME, MAP_NAMES, MAPS, mark, PERSIST_SET, TABLE_REF, type BaseChainName } from "./layout.ts";
import { liveFarms, marksInNft, payloadOf, planNft, type NftPlan, type NftPlanStats } from "./plan.ts";
import { BASE_RULES, BASE_CHAINS_DECL, elementText, HELPER, HELPER_RULES, mapKind, renderFarmNft, renderNft, type FarmNft, type NftDesired } from "./render.ts";

/**
 * The nftables applier: validated farms in (the shared schema, as the
 * iptables applier), one `nft -f` transaction out — all of it or nothing,
 * also when this process is killed mid-way (the kernel commits a batch only
 * once nft has sent all of it). One writer per target through the same
 * kernel lock as the iptables engine.
 */
export interface NftApplyOptions {
  target: Target;
  /** Farms whose change this is: only their chain and elements are written. */
  only?: readonly string[];
  timeoutMs?: number;
  dryRun?: boolean;
  runner?: Runner;
  /** Test hook: end the payload with a command nft refuses. */
  injectFault?: boolean;
}

export interface NftApplyResult {
  engine: "nftables";
  changed: boolean;
  mode: "full" | "scoped";
  payload: string;
  stats: NftPlanStats;
  farms: ResolvedFarm[];
  farmsChanged: string[];
  warnings: string[];
  /** Where the plan came from: the kernel read for this apply, or the state this process wrote last (checked by the stamp). */
  planned: "read" | "remembered";
  durationMs: number;
}

/** nft refused the transaction: nothing of it was committed. */
export class NftApplyError extends ApplyError {
  constructor(nftMessage: string, payload: string) {
    super(nftMessage, "nothing-committed", payload);
    this.name = "NftApplyError";
    this.message = `nft rejected the change: ${nftMessage.trim()}; the previous rules are in place`;
  }
}

export const INJECTED_FAULT = `add rule ${TABLE_REF} ${BASE_CHAIN_NAME.mark} jump natfarm_injected_fault`;

const NO_TABLE = /No such file or directory/;

/**
 * How this process runs nft when a caller passes no runner: `nft` through
 * runPrivileged (the CLI without an agent), or libnftables sessions
 * (lib/nftables/session.ts: the agent's, or any process's with
 * NATFARM_NFT_SESSION=on), which answer the same calls.
 */
let chosen: Runner | null = null;
export function useNftRunner(run: Runner | null): void {
  chosen = run;
}
function defaultNftRunner(): Runner {
  chosen ??= process.env.NATFARM_NFT_SESSION === "on" ? enableNftSessions().sessions.run : runPrivileged;
  return chosen;
}
export const nftRunner: Runner = (program, args, options) => defaultNftRunner()(program, args, options);

/** The whole of natfarm's table, with counters; `exists: false` when there is none. */
export async function readNft(target: Target, timeoutMs = 30_000, run: Runner = nftRunner): Promise<LiveNft> {
  const r = await run("nft", ["-j", "list", "table", "ip", "natfarm"], { target, timeoutMs, allowFailure: true });
  if (r.exitCode !== 0) {
    if (NO_TABLE.test(r.stderr)) return parseNftJson("");
    throw new Error(`nft -j list table ip natfarm failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
  }
  return parseNftJson(r.stdout);
}

/**
 * One set or map of natfarm's table with its elements (and their counters),
 * without the rest: the traffic sampler reads the `backends` set alone
 * every 10 s instead of 5,000 farms' chains and maps.
 */
export async function readNftSet(target: Target, name: string, timeoutMs = 30_000, run: Runner = nftRunner): Promise<LiveNft> {
  const r = await run("nft", ["-j", "list", "set", "ip", "natfarm", name], { target, timeoutMs, allowFailure: true });
  if (r.exitCode !== 0) {
    if (NO_TABLE.test(r.stderr)) return parseNftJson("", false);
    throw new Error(`nft -j list set ip natfarm ${name} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
  }
  return parseNftJson(r.stdout, false);
}

export function stampOf(live: LiveNft): number | null {
  const e = live.sets.get("stamp")?.elements[0];
  return e ? Number(e.key) : null;
}

/**
 * What this process last wrote to a target, per farm: a scoped change plans
 * from it instead of reading 5,000 farms back (a second), and the stamp in
 * the same transaction makes the kernel refuse the plan if any other natfarm
 * writer has changed the table since; then it is read and planned again.
 */
const remembered = new Map<string, { farms: Map<string, FarmNft>; stamp: number }>();

export function forgetRemembered(target?: Target): void {
  if (target) remembered.delete(formatTarget(target));
  else remembered.clear();
}

/** A live model of the table as natfarm would have written it for these farms. */
export function liveFromFarms(farms: ReadonlyMap<string, FarmNft>, stamp: number | null): LiveNft {
  const live: LiveNft = { exists: true, chains: new Map(), sets: new Map(), counters: new Map(), full: true };
  for (const name of MAP_NAMES) {
    const m = MAPS[name];
    live.sets.set(name, { name, kind: mapKind(name), type: m.type, data: m.data, flags: m.interval ? ["interval"] : [], elements: [] });
  }
  live.sets.set(PERSIST_SET, { name: PERSIST_SET, kind: "set", type: "ipv4_addr . mark", data: null, flags: ["timeout"], elements: [] });
  let handle = 1;
  for (const [key, name] of Object.entries(HELPER)) live.chains.set(name, { name, handle: handle++, base: null, rules: [{ text: HELPER_RULES[key as keyof typeof HELPER], handle: handle++ }] });
  for (const key of Object.keys(BASE_CHAIN_NAME) as BaseChainName[]) {
    const d = BASE_CHAINS_DECL[key];
    live.chains.set(BASE_CHAIN_NAME[key], { name: BASE_CHAIN_NAME[key], handle: handle++, base: { ...d, policy: "accept" }, rules: BASE_RULES[key].map((text) => ({ text, handle: handle++ })) });
  }
  for (const f of farms.values()) {
    if (f.rules === null) continue;
    live.chains.set(`farm_${f.farm}`, { name: `farm_${f.farm}`, handle: handle++, base: null, rules: f.rules.map((text) => ({ text, handle: handle++ })) });
    for (const e of f.elements) live.sets.get(e.map)!.elements.push({ key: e.key, value: e.value, ...(e.comment !== undefined ? { comment: e.comment } : {}) });
  }
  if (stamp !== null) live.sets.get("stamp")!.elements.push({ key: mark(stamp), value: null });
  return live;
}

export async function applyNftFarms(input: unknown, opts: NftApplyOptions): Promise<NftApplyResult> {
  return applyNftValidated(validateFarms(input), opts);
}

export async function applyNftValidated(farms: Farm[], opts: NftApplyOptions): Promise<NftApplyResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const run = opts.runner ?? nftRunner;
  // The address check is `ip`, never nft: runPrivileged's answer is cached for a second per target.
  const runIp = opts.runner ?? runPrivileged;
  const key = formatTarget(opts.target);
  return withTargetLock(opts.target, timeoutMs, async (lock) => {
    const started = performance.now();
    const only = opts.only && farms.some((f) => f.status === "up") ? new Set(opts.only) : null;
    const checked = only ? farms.filter((f) => only.has(f.name)) : farms;
    const memory = only ? remembered.get(key) : undefined;
    const [warnings, read] = await Promise.all([checkLocalVips(opts.target, checked, timeoutMs, runIp), memory ? null : readNft(opts.target, timeoutMs, run)]);
    let live: LiveNft | null = read;
    let planned: NftApplyResult["planned"] = read ? "read" : "remembered";
    const marked = farms.every((f) => f.backends.every((b) => b.mark !== undefined));
    const attempt = () => {
      const next = randomInt(1, 0x7fffffff);
      let plan: NftPlan;
      let resolved: ResolvedFarm[];
      let desired: NftDesired;
      let old: number | null;
      if (planned === "remembered" && only && marked) {
        // A scoped change of farms that carry their marks plans from what this process wrote last for THOSE farms only:
        // the same commands a plan against the whole remembered table gives, without walking every farm (O(n) → O(changed)).
        const held = new Map<string, FarmNft>();
        for (const name of only) {
          const f = memory!.farms.get(name);
          if (f) held.set(name, f);
        }
        resolved = farms as ResolvedFarm[];
        desired = { farms: new Map(resolved.filter((f) => only.has(f.name)).map((f) => [f.name, renderFarmNft(f)])) };
        old = memory!.stamp;
        plan = planNft(desired, liveFromFarms(held, old), { only });
      } else {
        live ??= liveFromFarms(memory!.farms, memory!.stamp);
        resolved = resolveMarks(farms, marksInNft(live));
        desired = renderNft(resolved);
        old = stampOf(live);
        plan = planNft(desired, live, { only: only ?? undefined });
      }
      let payload = payloadOf(plan, { old, next });
      if (payload && opts.injectFault) payload += `${INJECTED_FAULT}\n`;
      return { resolved, desired, plan, next, old, payload };
    };
    let a = attempt();
    if (!a.plan.empty && !opts.dryRun) {
      let r = await write(opts.target, a.payload, timeoutMs, lock.fd, run);
      if (r.exitCode !== 0 && planned === "remembered" && !opts.injectFault) {
        // Someone else wrote since (the stamp is gone) or the remembered state was wrong: read, plan, write again.
        remembered.delete(key);
        live = await readNft(opts.target, timeoutMs, run);
        planned = "read";
        a = attempt();
        r = a.plan.empty ? { exitCode: 0, stderr: "", stdout: "" } : await write(opts.target, a.payload, timeoutMs, lock.fd, run);
      }
      if (r.exitCode !== 0) {
        remembered.delete(key);
        throw new NftApplyError(r.stderr.trim() || `nft exited with code ${r.exitCode}`, a.payload);
      }
    }
    if (!opts.dryRun) {
      const stamp = a.plan.empty ? a.old : a.next;
      if (stamp === null) remembered.delete(key);
      else {
        // The table as it now is for natfarm: the farms this apply wrote, the others as the plan found them.
        // (What was remembered is updated in place: a failed write above forgot it.)
        const base = memory && planned === "remembered" ? memory.farms : farmsOfLive(live!, a.desired.farms, only);
        for (const [name, f] of a.desired.farms) if (!only || only.has(name)) base.set(name, f);
        if (only) {
          for (const name of only) if (!a.desired.farms.has(name)) base.delete(name);
        } else for (const name of [...base.keys()]) if (!a.desired.farms.has(name)) base.delete(name);
        remembered.set(key, { farms: base, stamp });
      }
    }
    return {
      engine: "nftables",
      changed: !a.plan.empty,
      mode: only ? "scoped" : "full",
      payload: a.payload,
      stats: a.plan.stats,
      farms: a.resolved,
      farmsChanged: a.plan.farmsChanged,
      warnings,
      planned,
      durationMs: performance.now() - started,
    };
  });
}

/**
 * Farms the kernel held before a scoped apply, for remembering: only a read
 * that matched what natfarm renders can be remembered as rendered, so a farm
 * outside the change that differs from its rendering is not remembered at
 * all (the next scoped change of it then reads the kernel).
 */
function farmsOfLive(live: LiveNft, desired: ReadonlyMap<string, FarmNft>, only: ReadonlySet<string> | null): Map<string, FarmNft> {
  const out = new Map<string, FarmNft>();
  if (!only) return out;
  const have = new Set<string>();
  for (const map of MAP_NAMES) for (const e of live.sets.get(map)?.elements ?? []) have.add(`${map} ${e.key} ${e.value} ${e.comment}`);
  for (const [name, f] of desired) {
    if (only.has(name) || f.rules === null) continue;
    const chain = live.chains.get(`farm_${name}`);
    if (!chain || chain.rules.length !== f.rules.length || chain.rules.some((r, i) => r.text !== f.rules![i])) continue;
    if (f.elements.every((e) => have.has(`${e.map} ${e.key} ${e.value} ${e.comment}`))) out.set(name, f);
  }
  return out;
}

async function write(target: Target, payload: string, timeoutMs: number, holdFd: number, run: Runner) {
  return run("nft", ["-f", "-"], { target, input: payload, inputAsFile: true, timeoutMs, allowFailure: true, holdFd });
}

/** Removes natfarm's nftables table from the target, and nothing else. */
export async function flushNft(opts: Omit<NftApplyOptions, "only">): Promise<NftApplyResult> {
  return applyNftFarms([], opts);
}

export interface NftDriftReport {
  /** Applying now would write nothing. */
  inSync: boolean;
  farms: { farm: string; inSync: boolean }[];
  /** Chains and elements in natfarm's table that no farm owns. */
  stray: string[];
  /** What an apply would write now. */
  payload: string;
}

/** Desired vs the kernel, farm by farm, from one full read (someone else changed natfarm's table: drift). */
export async function driftNft(input: unknown, opts: { target: Target; timeoutMs?: number; runner?: Runner }): Promise<NftDriftReport> {
  const farms = validateFarms(input);
  const live = await readNft(opts.target, opts.timeoutMs, opts.runner);
  const desired = renderNft(resolveMarks(farms, marksInNft(live)));
  const plan = planNft(desired, live);
  const drifted = new Set(plan.farmsChanged);
  const { stray, strayChains } = liveFarms(live);
  return {
    inSync: plan.empty,
    farms: farms.map((f) => ({ farm: f.name, inSync: !drifted.has(f.name) })),
    stray: [...stray.map((e) => `${e.map} ${elementText(e)}`), ...strayChains.map((c) => `chain ${c}`)],
    payload: payloadOf(plan, { old: stampOf(live), next: 0 }),
  };
}
