import type { FarmInput, ResolvedFarm } from "../farms/schema.ts";
import type { FarmDrift } from "./drift.ts";

/**
 * The console's view of a farm as the database holds it, and the pure
 * conversions between that, the shared schema's farm model and what pages
 * show. No I/O here: pages, actions and tests all use these.
 */
export interface BackendRow {
  id: number;
  position: number;
  ip: string;
  port: number | null;
  weight: number;
  mark: number;
  state: string;
  createdAt: Date;
}

export interface FarmRow {
  id: number;
  name: string;
  vip: string;
  ports: string;
  protocol: string;
  mode: string;
  status: string;
  applyState: string;
  applyError: string | null;
  appliedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  backends: BackendRow[];
}

/** A row as the shared schema's input: backends in position order, each with its mark. */
export function rowToInput(row: FarmRow): FarmInput {
  return {
    name: row.name,
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol as FarmInput["protocol"],
    mode: row.mode as FarmInput["mode"],
    status: row.status as FarmInput["status"],
    backends: [...row.backends]
      .sort((a, b) => a.position - b.position)
      .map((b) => ({ ip: b.ip, port: b.port, weight: b.weight, mark: b.mark, state: b.state as "up" | "down" | "maintenance" })),
  };
}

/** A row as the renderer takes it. Database rows always hold their marks. */
export function rowToResolved(row: FarmRow): ResolvedFarm {
  const input = rowToInput(row);
  return {
    name: input.name,
    vip: input.vip,
    ports: input.ports as string,
    protocol: input.protocol,
    mode: input.mode,
    status: input.status ?? "up",
    // Not stored yet: the lifecycle issue adds scheduler, persistence and priority to the database.
    scheduler: "weight",
    persistence: "none",
    persistenceTtl: 120,
    backends: (input.backends ?? []).map((b) => ({
      ip: b.ip,
      port: b.port ?? null,
      weight: b.weight ?? 1,
      mark: b.mark as number,
      state: b.state ?? "up",
      priority: 1,
    })),
  };
}

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
export function farmStatus(row: Pick<FarmRow, "status" | "applyState">, drift?: FarmDrift | null): FarmStatus {
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

export function summarizeCounts(
  row: Pick<FarmRow, "name" | "vip" | "ports" | "protocol" | "mode" | "status" | "applyState" | "applyError"> & { backends: number; backendsUp: number },
): FarmSummary {
  return {
    name: row.name,
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol,
    mode: row.mode,
    status: farmStatus(row),
    backends: row.backends,
    backendsUp: row.backendsUp,
    error: row.applyError,
  };
}

export function summarize(row: FarmRow, drift?: FarmDrift | null): FarmSummary {
  return {
    name: row.name,
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol,
    mode: row.mode,
    status: farmStatus(row, drift),
    backends: row.backends.length,
    backendsUp: row.backends.filter((b) => b.state === "up").length,
    error: row.applyError,
  };
}

export function formatMarkHex(mark: number): string {
  return `0x${mark.toString(16)}`;
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
