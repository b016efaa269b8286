import { applyFarms, flushFarms, marksInKernel, validateFarms } from "../applier/apply.ts";
import { connectionStats, cutConnections } from "../applier/conntrack.ts";
import { resetIptablesCounters } from "../applier/counters-reset.ts";
import { resetNftCounters } from "../nftables/counters-reset.ts";
import { driftFromView, driftOfFarm, driftReport } from "../applier/drift.ts";
import { checkLocalVips } from "../applier/local-vips.ts";
import { readTranslationCounters } from "../applier/counters.ts";
import { readFull } from "../applier/read.ts";
import { readNatfarmTables, readTables } from "../applier/tables.ts";
import { resolveMarks } from "../farms/resolve.ts";
import type { Farm } from "../farms/schema.ts";
import {
  labDown,
  labEnsureClientAddresses,
  labEnsureVip,
  labHold,
  labRemoveVip,
  labStartBackendServer,
  labStatus,
  labStopBackendServer,
  labTraffic,
  labUp,
} from "../lab/index.ts";
import { clusterLabMaintenance, clusterLabReading } from "../lab/cluster-console.ts";
import { clusterLabNodeKeepalived } from "../lab/cluster.ts";
import { applyNftValidated, flushNft, readNft, readNftSet, stampOf, type NftApplyResult } from "../nftables/apply.ts";
import { marksInNft, payloadOf, planNft } from "../nftables/plan.ts";
import { renderNft } from "../nftables/render.ts";
import { nftDriftOfFarms, nftDriftReport, nftSnapshot } from "../nftables/view.ts";
import type { Target } from "../privileged/target.ts";
import { DEFAULT_ENGINE, otherEngine, type Engine } from "./engine.ts";
import type { KernelApplyOptions, KernelApplyResult, KernelPort } from "./port.ts";

/**
 * The kernel from this process: only where it may run privileged programs
 * (root). Every operation that reads or writes rules takes the engine it is
 * for (default iptables); conntrack, addresses and the lab are the same for
 * both, since both engines give a backend the same mark.
 */

function fromNft(r: NftApplyResult): KernelApplyResult {
  const s = r.stats;
  return {
    engine: "nftables",
    changed: r.changed,
    mode: r.mode,
    payload: r.payload,
    // Rules and map elements alike: in nft a backend is its elements.
    stats: { chainsCreated: s.chainsAdded, chainsRewritten: s.chainsRewritten, chainsDeleted: s.chainsRemoved, rulesAdded: s.elementsAdded, rulesDeleted: s.elementsRemoved },
    nftStats: s,
    tables: [],
    farmsChanged: r.farmsChanged,
    warnings: r.warnings,
    durationMs: r.durationMs,
  };
}

const missingProgram = (e: unknown) => (e as NodeJS.ErrnoException)?.code === "ENOENT";

/** Whether the other engine holds natfarm rules on the target, and the marks they give backends. */
async function otherEngineState(engine: Engine, target: Target): Promise<{ present: boolean; marks: Map<string, number> }> {
  try {
    if (otherEngine(engine) === "nftables") {
      const live = await readNft(target);
      return { present: live.exists, marks: marksInNft(live) };
    }
    const live = await readFull(target);
    const hooked = [...live.builtins.values()].some((c) => c.rules.some((r) => r.owned));
    return { present: live.owned.size > 0 || hooked, marks: marksInKernel(live.owned.values()) };
  } catch (e) {
    // No nft (or iptables) on this machine: that engine holds nothing here.
    if (missingProgram(e)) return { present: false, marks: new Map() };
    throw e;
  }
}

/**
 * A full apply on one engine, then the other engine's natfarm rules removed
 * when there are any (an engine switch; also what completes a switch that
 * stopped half-way). The new engine gets the marks the old one gives
 * backends, so established connections, whose conntrack entries carry the
 * mark and their NAT, go on as they were; while both are loaded each gives
 * the same mark the same translation, so no new connection falls between
 * them. Only natfarm's own part of the old engine is removed: the iptables
 * NATFARM-* chains and their jumps, or `table ip natfarm`.
 */
export async function applyWithEngine(input: unknown, opts: KernelApplyOptions): Promise<KernelApplyResult> {
  return applyValidatedWithEngine(validateFarms(input), opts);
}

/** The same, for farms this process has validated already (the agent's farm sets: lib/agent/farm-sets.ts). */
export async function applyValidatedWithEngine(farms: Farm[], opts: KernelApplyOptions): Promise<KernelApplyResult> {
  const engine = opts.engine ?? DEFAULT_ENGINE;
  const scoped = Boolean(opts.only) || Boolean(opts.dryRun);
  const other = scoped ? { present: false, marks: new Map<string, number>() } : await otherEngineState(engine, opts.target);
  const resolved: Farm[] = other.present ? resolveMarks(farms, other.marks) : farms;
  let result: KernelApplyResult;
  if (engine === "nftables") {
    result = fromNft(await applyNftValidated(resolved, { target: opts.target, only: opts.only, dryRun: opts.dryRun, injectFault: Boolean(opts.injectFault) }));
  } else {
    const { farms: _f, ...rest } = await applyFarms(resolved, { target: opts.target, only: opts.only, dryRun: opts.dryRun, injectFault: opts.injectFault });
    result = { ...rest, engine: "iptables" };
  }
  if (!other.present) return result;
  const from = otherEngine(engine);
  try {
    const removed = from === "nftables" ? fromNft(await flushNft({ target: opts.target })) : { ...(await flushFarms({ target: opts.target })), engine: "iptables" as const };
    return { ...result, changed: true, switchedFrom: { engine: from, chainsDeleted: removed.stats.chainsDeleted, rulesDeleted: removed.stats.rulesDeleted } };
  } catch (e) {
    // The new engine's rules are in and give the same translations: traffic is served; the next full apply removes the rest.
    return { ...result, warnings: [...result.warnings, `natfarm's ${from} rules could not be removed after the switch to ${engine} (${(e as Error).message}); the next full apply tries again`] };
  }
}

async function nftDriftReportOf(input: unknown, target: Target) {
  const farms = validateFarms(input);
  const live = await readNft(target);
  const resolved = resolveMarks(farms, marksInNft(live));
  const plan = planNft(renderNft(resolved), live);
  return nftDriftReport(live, resolved, { inSync: plan.empty, payload: payloadOf(plan, { old: stampOf(live), next: 0 }) });
}

export const directKernel: KernelPort = {
  via: "direct",
  applyFarms: (input, opts) => applyWithEngine(input, opts),
  driftReport: (input, opts) => ((opts.engine ?? DEFAULT_ENGINE) === "nftables" ? nftDriftReportOf(input, opts.target) : driftReport(input, opts)),
  async driftOfFarm(target, farm, opts = {}) {
    if ((opts.engine ?? DEFAULT_ENGINE) === "nftables") return nftDriftOfFarms(await readNft(target), [farm]).get(farm.name)!;
    return driftOfFarm(target, farm);
  },
  async driftOfFarms(target, farms, opts = {}) {
    if ((opts.engine ?? DEFAULT_ENGINE) === "nftables") return nftDriftOfFarms(await readNft(target), farms);
    return driftFromView(await readFull(target), farms);
  },
  async readTables(target, opts = {}) {
    if ((opts.engine ?? DEFAULT_ENGINE) === "nftables") return nftSnapshot(await readNft(target));
    return readTables(target);
  },
  async readNatfarmTables(target, opts = {}) {
    const nft = (opts.engine ?? DEFAULT_ENGINE) === "nftables";
    if (opts.translations) return nft ? nftSnapshot(await readNftSet(target, "backends")) : readTranslationCounters(target);
    if (nft) return nftSnapshot(await readNft(target), { farm: opts.farm });
    return readNatfarmTables(target, { farm: opts.farm, maxRules: opts.maxRules });
  },
  connectionStats: (target) => connectionStats(target),
  cutConnections: (target, mark) => cutConnections(target, mark),
  resetCounters(target, opts = {}) {
    const o = { target, farm: opts.farm, injectFault: opts.injectFault };
    return (opts.engine ?? DEFAULT_ENGINE) === "nftables" ? resetNftCounters(o) : resetIptablesCounters(o);
  },
  checkLocalVips: (target, farms) => checkLocalVips(target, farms, 10_000),
  ping: async () => {},
  lab: {
    up: labUp,
    down: labDown,
    status: labStatus,
    traffic: labTraffic,
    hold: labHold,
    ensureVip: labEnsureVip,
    removeVip: labRemoveVip,
    ensureClientAddresses: labEnsureClientAddresses,
    stopBackendServer: labStopBackendServer,
    startBackendServer: labStartBackendServer,
  },
  cluster: { status: clusterLabReading, maintenance: clusterLabMaintenance, keepalived: clusterLabNodeKeepalived },
};
