import { HealthCheckSchema, type FarmInput, type ResolvedFarm } from "../farms/schema.ts";
import type { FarmRuleDrift as FarmDrift } from "../applier/drift.ts";
import { farmStatus, type FarmSummary } from "./farm-status.ts";

export { farmStatus, isCritical, FARM_STATUS_LABEL, packSummaries, unpackSummaries } from "./farm-status.ts";
export type { FarmStatus, FarmSummary, PackedSummaries } from "./farm-status.ts";

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
  priority?: number;
  /** The health checker's last probe outcome and when it ran. */
  healthDetail?: string | null;
  healthAt?: Date | null;
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
  scheduler?: string;
  persistence?: string;
  persistenceTtl?: number;
  /** The health check as JSON text, null for none. */
  healthcheck?: string | null;
  applyState: string;
  applyError: string | null;
  appliedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  backends: BackendRow[];
}

function parseHealthcheck(text: string | null | undefined): FarmInput["healthcheck"] {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as FarmInput["healthcheck"];
  } catch {
    return undefined;
  }
}

/**
 * A row as the shared schema's input: every farm setting the database holds
 * (so that a change to one field never resets another), backends in position
 * order, each with its mark.
 */
export function rowToInput(row: FarmRow): FarmInput {
  const healthcheck = parseHealthcheck(row.healthcheck);
  return {
    name: row.name,
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol as FarmInput["protocol"],
    mode: row.mode as FarmInput["mode"],
    status: row.status as FarmInput["status"],
    ...(row.scheduler !== undefined ? { scheduler: row.scheduler as FarmInput["scheduler"] } : {}),
    ...(row.persistence !== undefined ? { persistence: row.persistence as FarmInput["persistence"] } : {}),
    ...(row.persistenceTtl !== undefined ? { persistenceTtl: row.persistenceTtl } : {}),
    ...(healthcheck ? { healthcheck } : {}),
    backends: [...row.backends]
      .sort((a, b) => a.position - b.position)
      .map((b) => ({
        ip: b.ip,
        port: b.port,
        weight: b.weight,
        mark: b.mark,
        state: b.state as "up" | "down" | "maintenance",
        ...(b.priority !== undefined ? { priority: b.priority } : {}),
      })),
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
    scheduler: input.scheduler ?? "weight",
    persistence: input.persistence ?? "none",
    persistenceTtl: input.persistenceTtl ?? 120,
    ...(input.healthcheck ? { healthcheck: HealthCheckSchema.parse(input.healthcheck) } : {}),
    backends: (input.backends ?? []).map((b) => ({
      ip: b.ip,
      port: b.port ?? null,
      weight: b.weight ?? 1,
      mark: b.mark as number,
      state: b.state ?? "up",
      priority: b.priority ?? 1,
    })),
  };
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
    status: farmStatus(row, null, row),
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
    status: farmStatus(row, drift, backendCounts(row)),
    backends: row.backends.length,
    backendsUp: row.backends.filter((b) => b.state === "up").length,
    error: row.applyError,
  };
}

export function backendCounts(row: Pick<FarmRow, "backends">): { backends: number; backendsUp: number } {
  return { backends: row.backends.length, backendsUp: row.backends.filter((b) => b.state === "up").length };
}

export function formatMarkHex(mark: number): string {
  return `0x${mark.toString(16)}`;
}

