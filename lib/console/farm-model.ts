import type { FarmRow } from "../service/farm-rows.ts";
import { farmStatus, type FarmSummary } from "./farm-status.ts";

export { farmStatus, isCritical, isDegraded, FARM_STATUS_LABEL, packSummaries, unpackSummaries } from "./farm-status.ts";
export type { FarmStatus, FarmSummary, PackedSummaries } from "./farm-status.ts";

/**
 * What pages show of a farm's row: its line in the farms table and its
 * backend counts. No I/O here (the rows themselves are lib/service's).
 */
export function summarizeCounts(
  row: Pick<FarmRow, "name" | "vip" | "ports" | "protocol" | "mode" | "status" | "applyState" | "applyError"> & { backends: number; backendsUp: number },
  addresses = "",
): FarmSummary {
  return {
    name: row.name,
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol,
    mode: row.mode,
    status: farmStatus(row, null, row),
    backends: row.backends,
    backendsUp: row.backendsUp,
    error: row.applyError,
    enabled: row.status === "up",
    addresses,
  };
}

export function backendCounts(row: Pick<FarmRow, "backends">): { backends: number; backendsUp: number } {
  return { backends: row.backends.length, backendsUp: row.backends.filter((b) => b.state === "up").length };
}
