import type { ApplyOptions, ApplyResult } from "../applier/apply.ts";
import type { ConnectionStats } from "../applier/conntrack.ts";
import type { DriftReport, FarmRuleDrift } from "../applier/drift.ts";
import type { TablesSnapshot } from "../applier/tables.ts";
import type { Farm, ResolvedFarm } from "../farms/schema.ts";
import type { ClusterReading, MaintenanceResult } from "../lab/cluster-console.ts";
import type { HoldResult, LabInfo, TrafficResult } from "../lab/index.ts";
import type { Target } from "../privileged/target.ts";

/**
 * Everything natfarm asks of the kernel, as one port with typed operations.
 * Two implementations: `directKernel` runs the privileged programs in this
 * process (the agent itself, or the CLI as root with no agent), and
 * `agentKernel` sends each operation to the agent over its Unix socket (the
 * console and the health checker, which run unprivileged). Callers cannot
 * tell them apart: the same results, the same error classes.
 */
export type KernelApplyOptions = Pick<ApplyOptions, "target" | "only" | "dryRun" | "injectFault">;
/** What an apply reports over the port: the resolved farms stay with the caller, who sent them. */
export type KernelApplyResult = Omit<ApplyResult, "farms">;

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
}

export interface KernelPort {
  readonly via: "direct" | "agent";
  applyFarms(input: unknown, opts: KernelApplyOptions): Promise<KernelApplyResult>;
  driftReport(input: unknown, opts: { target: Target }): Promise<DriftReport>;
  driftOfFarm(target: Target, farm: ResolvedFarm): Promise<FarmRuleDrift>;
  /** Drift of many farms from one full read. */
  driftOfFarms(target: Target, farms: readonly ResolvedFarm[]): Promise<Map<string, FarmRuleDrift>>;
  readTables(target: Target): Promise<TablesSnapshot>;
  readNatfarmTables(target: Target, opts?: { farm?: string; maxRules?: number }): Promise<TablesSnapshot>;
  connectionStats(target: Target): Promise<ConnectionStats>;
  cutConnections(target: Target, mark: number): Promise<number>;
  /** Refuses (FarmValidationError) farms whose VIP is one of the target's own addresses. */
  checkLocalVips(target: Target, farms: readonly Farm[]): Promise<string[]>;
  /** Resolves when the kernel side answers (the agent is there); rejects with AgentUnavailableError otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  readonly lab: LabPort;
  /** Absent on ports that know no cluster (the tests' recording fakes). */
  readonly cluster?: ClusterPort;
}
