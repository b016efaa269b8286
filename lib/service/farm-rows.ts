import { HealthCheckSchema, type FarmInput, type ResolvedFarm } from "../farms/schema.ts";

/**
 * A farm as the database holds it, and the two ways the engine reads one:
 * as the shared schema's input (validation, the farm set) and as the
 * renderer's resolved farm (rules, drift). Pure: pages, the service, the
 * checker and tests all use these.
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

// A column no longer parsing must not make the farm unreadable: it reads as "no health check".
function parseHealthcheck(text: string | null | undefined): FarmInput["healthcheck"] {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as FarmInput["healthcheck"];
  } catch {
    return undefined;
  }
}

/**
 * Every farm setting the database holds, so that a change to one field never
 * resets another; backends in position order, each with its mark.
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

/** Database rows always hold their marks, so a row is already resolved. */
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
