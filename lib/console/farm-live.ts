import "server-only";
import type { MarkStats } from "../applier/conntrack.ts";
import { formatMark } from "../farms/marks.ts";
import { sharedConnectionStats } from "../service/connection-stats.ts";
import { isAgentDown } from "../service/errors.ts";
import type { FarmRow } from "../service/farm-rows.ts";
import { consoleEnv } from "./env.ts";
import { backendCounts } from "./farm-model.ts";
import { farmService } from "./farm-service.ts";
import { farmStatus, type FarmStatus } from "./farm-status.ts";
import { liveVersion, type FarmLive, type LiveHealthEvent } from "./live-types.ts";

export type { FarmLive, LiveBackend, LiveHealthEvent, LiveStats } from "./live-types.ts";

/**
 * What the farm page polls every 2 s: the backends' states with the health
 * checker's last probe, connection statistics from conntrack (per backend,
 * by mark, and the farm's totals), and the latest health events. `version`
 * changes whenever the farm's row changes (a health transition, an apply),
 * and tells the page to re-render from the server.
 */
const EVENTS = 20;

const ZERO: MarkStats = { established: 0, pending: 0, closing: 0, total: 0 };

export async function farmLive(name: string): Promise<FarmLive | null> {
  const service = await farmService();
  const { target } = consoleEnv();
  const stats = target.target
    ? sharedConnectionStats(target.target, service.kernel).then(
        (s) => ({ s }),
        (e: Error) => ({ error: e.message, agentDown: isAgentDown(e) }),
      )
    : null;
  const [row, events] = await Promise.all([service.getFarm(name) as Promise<FarmRow | null>, service.healthEvents({ farm: name, limit: EVENTS })]);
  if (!row) return null;
  const read = stats ? await stats : null;
  const byMark = read && "s" in read ? read.s.byMark : null;
  const totals = { ...ZERO };
  const backends = row.backends.map((b) => {
    const s = byMark ? (byMark.get(b.mark) ?? ZERO) : null;
    if (s) for (const k of ["established", "pending", "closing", "total"] as const) totals[k] += s[k];
    return {
      mark: b.mark,
      markHex: formatMark(b.mark),
      ip: b.ip,
      port: b.port,
      state: b.state,
      healthDetail: b.healthDetail ?? null,
      healthAt: b.healthAt ? b.healthAt.toISOString() : null,
      stats: s,
    };
  });
  const status: FarmStatus = farmStatus(row, null, backendCounts(row));
  return {
    at: new Date().toISOString(),
    farm: row.name,
    version: liveVersion(row),
    status,
    applyState: row.applyState,
    healthcheck: Boolean(row.healthcheck),
    backends,
    stats: byMark ? { at: read && "s" in read ? read.s.at : new Date().toISOString(), totals } : null,
    statsNote: !target.target ? "statistics need a target" : read && "error" in read ? `conntrack could not be read: ${read.error}` : null,
    agentUnavailable: Boolean(read && "error" in read && read.agentDown),
    events: events.map(toEvent),
  };
}

export function toEvent(e: { id: number; at: Date; farm: string; backend: string; mark: number; from: string; to: string; detail: string }): LiveHealthEvent {
  return { id: e.id, at: e.at.toISOString(), farm: e.farm, backend: e.backend, mark: e.mark, from: e.from, to: e.to, detail: e.detail };
}

/** Every farm whose backends are not all up: name, backends, backends up (the farms list polls this). */
export async function degradedFarms(): Promise<[string, number, number][]> {
  const rows = await (await farmService()).listFarmCounts();
  return rows.filter((r) => r.backendsUp < r.backends && r.status === "up").map((r) => [r.name, r.backends, r.backendsUp]);
}
