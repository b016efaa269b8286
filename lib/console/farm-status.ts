import type { FarmDrift } from "./drift.ts";

/**
 * A farm's state as the console shows it, and the farms table's data: no
 * server imports, the browser uses this module too.
 */
/** What the farms table and the farm page call a farm's state. */
export type FarmStatus = "running" | "stopped" | "failed" | "pending" | "drift";

export const FARM_STATUS_LABEL: Record<FarmStatus, string> = {
  running: "running",
  stopped: "stopped",
  failed: "apply failed",
  pending: "changes pending",
  drift: "drift",
};

/**
 * The database's verdict comes first (a failed or pending apply is what the
 * operator must act on), then the kernel's (drift), then the farm's own status.
 */
export function farmStatus(row: { status: string; applyState: string }, drift?: FarmDrift | null): FarmStatus {
  if (row.applyState === "failed") return "failed";
  if (row.applyState === "pending") return "pending";
  if (drift && !drift.inSync) return "drift";
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
}

const COLUMNS = ["name", "vip", "ports", "protocol", "mode", "status", "backends", "backendsUp", "error"] as const;

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
  }));
}
