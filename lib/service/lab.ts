import { kernel, type KernelPort } from "../kernel/index.ts";
import type { LabInfo, TrafficResult } from "../lab/index.ts";
import { effectiveShares } from "../netfilter/probability.ts";
import type { FarmRow } from "./farm-rows.ts";

/**
 * The console's lab: brought up at start and kept (never torn down by the
 * console), and the test-traffic run behind the Lab page. Every lab
 * operation is the kernel port's, so the unprivileged console asks the agent.
 */
export interface LabTarget {
  labName: string;
  labBackends: number;
}

const LAB_CLIENT_NET = /^198\.51\.100\.(\d{1,3})$/;

let pending: Promise<LabInfo> | null = null;

/** The lab as it is, brought up first when its namespaces are missing. Concurrent callers share one labUp. */
export async function ensureLab(t: LabTarget, k: KernelPort = kernel()): Promise<LabInfo> {
  const current = await k.lab.status({ name: t.labName });
  if (current) return current;
  pending ??= (async () => {
    try {
      return await k.lab.up({ name: t.labName, backends: t.labBackends });
    } catch (e) {
      // Another process (the start script, a second console) won the race.
      const info = await k.lab.status({ name: t.labName }).catch(() => null);
      if (info) return info;
      throw e;
    } finally {
      pending = null;
    }
  })();
  return pending;
}

export interface LabBackendResult {
  index: number;
  ip: string;
  port: number | null;
  weight: number;
  state: string;
  mark: number;
  expected: number;
  count: number;
  observed: number;
  /** Source addresses this backend saw, with counts: the client (dnat) or the VIP (nat). */
  peers: { address: string; count: number }[];
}

export interface LabRunResult {
  farm: string;
  vip: string;
  port: number;
  protocol: "tcp" | "udp";
  connections: number;
  ok: number;
  failed: number;
  errors: { message: string; count: number }[];
  backends: LabBackendResult[];
  /** Replies from lab backends that are not backends of this farm. */
  strangers: { name: string; count: number }[];
  durationMs: number;
}

export class LabRunError extends Error {}

/** Why a farm cannot be tested in the lab, or null when it can. */
export function labProblem(farm: Pick<FarmRow, "vip" | "ports" | "protocol" | "status">): string | null {
  const host = LAB_CLIENT_NET.exec(farm.vip)?.[1];
  if (!host || Number(host) < 3 || Number(host) > 254) return `its VIP ${farm.vip} is not a free address of the lab's client network 198.51.100.0/24`;
  if (farm.protocol !== "tcp" && farm.protocol !== "udp") return `the lab sends only tcp or udp, the farm balances ${farm.protocol}`;
  if (farm.status !== "up") return "the farm is stopped";
  if (!/^\d+/.test(farm.ports)) return "the farm has no fixed port to connect to";
  return null;
}

/** First port of a farm's port spec ("80,443" → 80, "8000:8100" → 8000). */
export function firstPort(ports: string): number {
  return Number(/^\d+/.exec(ports)![0]);
}

export async function runLabTest(t: LabTarget, farm: FarmRow, connections: number, k: KernelPort = kernel()): Promise<LabRunResult> {
  const problem = labProblem(farm);
  if (problem) throw new LabRunError(`Farm ${farm.name} cannot be tested in the lab: ${problem}.`);
  const lab = await ensureLab(t, k);
  const port = firstPort(farm.ports);
  const protocol = farm.protocol as "tcp" | "udp";
  await k.lab.ensureVip({ name: t.labName, vip: farm.vip });
  const r = await k.lab.traffic({ name: t.labName, vip: farm.vip, port, connections, protocol, concurrency: 32, timeoutMs: 2000 });
  return tallyLabRun(farm, lab, r);
}

/** Per-backend counts beside the shares the weights promise (after the kernel's rounding). */
export function tallyLabRun(farm: FarmRow, lab: LabInfo, r: TrafficResult): LabRunResult {
  const port = r.port;
  const protocol = r.protocol;

  const backends = [...farm.backends].sort((a, b) => a.position - b.position);
  const up = backends.filter((b) => b.state === "up");
  const shares = effectiveShares(up.map((b) => b.weight));
  const labByIp = new Map(lab.backends.map((b) => [b.ip, b.name]));
  const claimed = new Set<string>();
  const rows = backends.map((b): LabBackendResult => {
    const labName = labByIp.get(b.ip);
    const tally = labName ? r.backends[labName] : undefined;
    if (labName) claimed.add(labName);
    const k = up.indexOf(b);
    return {
      index: b.position,
      ip: b.ip,
      port: b.port,
      weight: b.weight,
      state: b.state,
      mark: b.mark,
      expected: k === -1 ? 0 : shares[k]!,
      count: tally?.count ?? 0,
      observed: r.ok ? (tally?.count ?? 0) / r.ok : 0,
      peers: Object.entries(tally?.peers ?? {}).map(([address, count]) => ({ address, count })),
    };
  });
  return {
    farm: farm.name,
    vip: farm.vip,
    port,
    protocol,
    connections: r.connections,
    ok: r.ok,
    failed: r.failed,
    errors: Object.entries(r.errors).map(([message, count]) => ({ message, count })),
    backends: rows,
    strangers: Object.entries(r.backends)
      .filter(([name]) => !claimed.has(name))
      .map(([name, tally]) => ({ name, count: tally.count })),
    durationMs: r.durationMs,
  };
}
