import type { FarmRuleDrift as FarmDrift } from "../applier/drift.ts";

/**
 * A farm's state as the console shows it, and the farms table's data: no
 * server imports, the browser uses this module too.
 */
/** What the farms table and the farm page call a farm's state. */
export type FarmStatus = "running" | "degraded" | "stopped" | "failed" | "pending" | "drift" | "critical";

export const FARM_STATUS_LABEL: Record<FarmStatus, string> = {
  running: "running",
  degraded: "degraded",
  stopped: "stopped",
  failed: "apply failed",
  pending: "changes pending",
  drift: "drift",
  critical: "critical",
};

/** Backend counts of a farm: how many it has, how many are up (in the rule set). */
export interface BackendCounts {
  backends: number;
  backendsUp: number;
}

/**
 * A started farm with no backend up answers no new connection: critical,
 * whether every backend is down or in maintenance or it has none at all. It
 * recovers when the health checker brings a backend back, an operator ends
 * a maintenance or adds one.
 */
export function isCritical(row: { status: string }, counts?: BackendCounts | null): boolean {
  return row.status === "up" && !!counts && counts.backendsUp === 0;
}

/** A started farm that still balances, but not over every backend it has. */
export function isDegraded(row: { status: string }, counts?: BackendCounts | null): boolean {
  return row.status === "up" && !!counts && counts.backendsUp > 0 && counts.backendsUp < counts.backends;
}

/**
 * The database's verdict comes first (a failed apply is what the operator
 * must act on), then whether the farm can serve at all (critical: no backend
 * up), then a pending apply, the kernel's verdict (drift), backends out of
 * service (degraded), and the farm's own status. Without backend counts a
 * farm is never called running for want of them: callers pass them.
 */
export function farmStatus(row: { status: string; applyState: string }, drift?: FarmDrift | null, counts?: BackendCounts | null): FarmStatus {
  if (row.applyState === "failed") return "failed";
  if (isCritical(row, counts)) return "critical";
  if (row.applyState === "pending") return "pending";
  if (drift && !drift.inSync) return "drift";
  if (isDegraded(row, counts)) return "degraded";
  return row.status === "stopped" ? "stopped" : "running";
}

/** One line of the farms table: small, because 5,000 of them go to the browser. */
export interface FarmSummary {
  name: string;
  vip: string;
  ports: string;
  protocol: string;
  mode: string;
  status: FarmStatus;
  backends: number;
  backendsUp: number;
  error: string | null;
  /** Started (its status "up"), whatever the apply or the kernel say: whether the list offers Stop or Start. */
  enabled: boolean;
  /** Its backends' addresses, "ip:port" separated by spaces: what the list's search and bulk drain look in. */
  addresses: string;
}

/**
 * The farms table's data, column by column: 5,000 farms travel to the
 * browser in the page's payload, and repeating every key per farm would
 * more than double it.
 */
export interface PackedSummaries {
  name: string[];
  vip: string[];
  ports: string[];
  protocol: string[];
  mode: string[];
  status: FarmStatus[];
  backends: number[];
  backendsUp: number[];
  error: (string | null)[];
  enabled: boolean[];
  addresses: string[];
}

const COLUMNS = ["name", "vip", "ports", "protocol", "mode", "status", "backends", "backendsUp", "error", "enabled", "addresses"] as const;

export function packSummaries(list: FarmSummary[]): PackedSummaries {
  const out = Object.fromEntries(COLUMNS.map((c) => [c, new Array(list.length)])) as unknown as PackedSummaries;
  list.forEach((f, i) => {
    for (const c of COLUMNS) (out[c] as unknown[])[i] = f[c];
  });
  return out;
}

export function unpackSummaries(p: PackedSummaries): FarmSummary[] {
  return p.name.map((name, i) => ({
    name,
    vip: p.vip[i]!,
    ports: p.ports[i]!,
    protocol: p.protocol[i]!,
    mode: p.mode[i]!,
    status: p.status[i]!,
    backends: p.backends[i]!,
    backendsUp: p.backendsUp[i]!,
    error: p.error[i] ?? null,
    enabled: p.enabled[i] ?? true,
    addresses: p.addresses[i] ?? "",
  }));
}
