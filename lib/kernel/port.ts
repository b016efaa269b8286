import type { ApplyOptions, ApplyResult } from "../applier/apply.ts";
import type { ConnectionStats } from "../applier/conntrack.ts";
import type { CountersResetResult } from "../applier/counters-reset.ts";
import type { DriftReport, FarmRuleDrift } from "../applier/drift.ts";
import type { TablesSnapshot } from "../applier/tables.ts";
import type { Farm, ResolvedFarm } from "../farms/schema.ts";
import type { ClusterReading, MaintenanceResult } from "../lab/cluster-console.ts";
import type { HoldResult, LabInfo, TrafficResult } from "../lab/index.ts";
import type { NftPlanStats } from "../nftables/plan.ts";
import type { Target } from "../privileged/target.ts";
import type { Engine } from "./engine.ts";

/**
 * Everything natfarm asks of the kernel, as one port with typed operations.
 * Two implementations: `directKernel` runs the privileged programs in this
 * process (the agent itself, or the CLI as root with no agent), and
 * `agentKernel` sends each operation to the agent over its Unix socket (the
 * console and the health checker, which run unprivileged). Callers cannot
 * tell them apart: the same results, the same error classes.
 *
 * Operations on rules take the engine they are for (`engine`, default
 * iptables); `withEngine` gives a port whose operations default to one
 * engine, which is how the console, the checker and the CLI choose it.
 */
export type KernelApplyOptions = Pick<ApplyOptions, "target" | "only" | "dryRun" | "injectFault"> & { engine?: Engine };
/** What an apply reports over the port: the resolved farms stay with the caller, who sent them. */
export type KernelApplyResult = Omit<ApplyResult, "farms"> & {
  /** Which engine wrote it (absent only from ports that predate the choice, e.g. tests' fakes: iptables). */
  engine?: Engine;
  /** The nftables engine's own counts (`stats` then counts map elements as rules). */
  nftStats?: NftPlanStats;
  /** This full apply also removed natfarm's rules from the other engine (an engine switch). */
  switchedFrom?: { engine: Engine; chainsDeleted: number; rulesDeleted: number };
};
export type { CountersResetResult };
export interface EngineOption {
  engine?: Engine;
}

export interface LabPort {
  up(opts: { name: string; backends: number; ports?: number[]; ownerPid?: number }): Promise<LabInfo>;
  down(opts: { name: string }): Promise<void>;
  status(opts: { name: string }): Promise<LabInfo | null>;
  traffic(opts: { name: string; vip: string; port: number; connections: number; protocol?: "tcp" | "udp"; concurrency?: number; timeoutMs?: number; sources?: string[] }): Promise<TrafficResult>;
  hold(opts: { name: string; vip: string; port: number; durationMs: number; intervalMs?: number; protocol?: "tcp" | "udp"; timeoutMs?: number }): Promise<HoldResult>;
  ensureVip(opts: { name: string; vip: string }): Promise<void>;
  removeVip(opts: { name: string; vip: string }): Promise<void>;
  ensureClientAddresses(opts: { name: string; addresses: string[] }): Promise<void>;
  stopBackendServer(opts: { name: string; index: number }): Promise<void>;
  startBackendServer(opts: { name: string; index: number }): Promise<void>;
}

/** A cluster's nodes (for now the cluster lab, named by its lab name): what root reads of them, and the maintenance switch. */
export interface ClusterPort {
  status(opts: { name: string }): Promise<ClusterReading>;
  maintenance(opts: { name: string; node: number; on: boolean }): Promise<MaintenanceResult>;
  /** One node's keepalived brought to these farms' VIPs, reloaded only when its configuration changed. */
  keepalived(opts: { name: string; node: number; farms: { name: string; vip: string; mode: "nat" | "dnat" }[] }): Promise<{ node: string; changed: boolean; reloaded: boolean }>;
}

export interface KernelPort {
  readonly via: "direct" | "agent";
  /** The engine operations use when they name none (withEngine); absent: iptables. */
  readonly engine?: Engine;
  applyFarms(input: unknown, opts: KernelApplyOptions): Promise<KernelApplyResult>;
  driftReport(input: unknown, opts: { target: Target } & EngineOption): Promise<DriftReport>;
  driftOfFarm(target: Target, farm: ResolvedFarm, opts?: EngineOption): Promise<FarmRuleDrift>;
  /** Drift of many farms from one full read. */
  driftOfFarms(target: Target, farms: readonly ResolvedFarm[], opts?: EngineOption): Promise<Map<string, FarmRuleDrift>>;
  readTables(target: Target, opts?: EngineOption): Promise<TablesSnapshot>;
  /**
   * natfarm's part of the tables: one farm's, the first `maxRules` rules, or with `translations`
   * only the per-backend translation counters (iptables: the nat DNAT rules; nftables: the
   * `backends` set), which is all the traffic sampler needs.
   */
  readNatfarmTables(target: Target, opts?: { farm?: string; maxRules?: number; translations?: true } & EngineOption): Promise<TablesSnapshot>;
  connectionStats(target: Target): Promise<ConnectionStats>;
  cutConnections(target: Target, mark: number): Promise<number>;
  /** Zeroes natfarm's own counters (one farm's, or all of natfarm's), nobody else's, in one transaction under the target lock. */
  resetCounters(target: Target, opts?: { farm?: string; injectFault?: boolean } & EngineOption): Promise<CountersResetResult>;
  /** Refuses (FarmValidationError) farms whose VIP is one of the target's own addresses. */
  checkLocalVips(target: Target, farms: readonly Farm[]): Promise<string[]>;
  /** Resolves when the kernel side answers (the agent is there); rejects with AgentUnavailableError otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  readonly lab: LabPort;
  /** Absent on ports that know no cluster (the tests' recording fakes). */
  readonly cluster?: ClusterPort;
}

/** The same port, its rule operations defaulting to `engine` (an explicit engine in a call still wins). */
export function withEngine(port: KernelPort, engine: Engine): KernelPort {
  const e = <O extends EngineOption>(o: O | undefined): O => ({ ...(o ?? ({} as O)), engine: o?.engine ?? engine });
  return {
    ...port,
    via: port.via,
    engine,
    applyFarms: (input, opts) => port.applyFarms(input, e(opts)),
    driftReport: (input, opts) => port.driftReport(input, e(opts)),
    driftOfFarm: (target, farm, opts) => port.driftOfFarm(target, farm, e(opts)),
    driftOfFarms: (target, farms, opts) => port.driftOfFarms(target, farms, e(opts)),
    readTables: (target, opts) => port.readTables(target, e(opts)),
    readNatfarmTables: (target, opts) => port.readNatfarmTables(target, e(opts)),
    resetCounters: (target, opts) => port.resetCounters(target, e(opts)),
  };
}
