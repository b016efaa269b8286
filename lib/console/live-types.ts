import type { FarmStatus } from "./farm-status.ts";

/**
 * The farm page's live data (GET /api/farms/<name>/live): plain JSON, shared
 * by the route handler and the browser.
 */
export interface LiveStats {
  established: number;
  pending: number;
  closing: number;
  total: number;
}

export interface LiveBackend {
  mark: number;
  markHex: string;
  ip: string;
  port: number | null;
  /** up | down (health check) | maintenance (operator) */
  state: string;
  /** The health checker's last probe outcome ("connected", "ECONNREFUSED", "HTTP 503"...). */
  healthDetail: string | null;
  healthAt: string | null;
  /** null: no statistics (no target, or conntrack could not be read). */
  stats: LiveStats | null;
}

export interface LiveHealthEvent {
  id: number;
  at: string;
  farm: string;
  backend: string;
  mark: number;
  from: string;
  to: string;
  detail: string;
}

export interface FarmLive {
  at: string;
  farm: string;
  /** Changes when the farm's row changes: the page then re-renders from the server. */
  version: string;
  status: FarmStatus;
  applyState: string;
  healthcheck: boolean;
  backends: LiveBackend[];
  stats: { at: string; totals: LiveStats } | null;
  /** Why there are no statistics ("statistics need a target"). */
  statsNote: string | null;
  /** The statistics could not be asked for: the agent is down (the page's banner shows it). */
  agentUnavailable?: boolean;
  events: LiveHealthEvent[];
}

/** The row's identity for the page: its last write, apply state and backend states. */
export function liveVersion(row: { updatedAt: Date; applyState: string; backends: { mark: number; state: string }[] }): string {
  return `${row.updatedAt.toISOString()}|${row.applyState}|${row.backends.map((b) => `${b.mark}:${b.state}`).join(",")}`;
}
