import type { Db } from "../db/client.ts";
import type { KernelPort } from "../kernel/index.ts";
import type { Target } from "../privileged/target.ts";
import { advance, countersOf, ratesOf, type FarmCount, type TrafficPoint } from "./traffic-counters.ts";

/**
 * Samples natfarm's per-backend counters (traffic-counters.ts) every step
 * and keeps each farm's totals in the database, so the farm page can draw
 * new connections and bytes per second with history, across counter resets,
 * farm rewrites, engine switches and sampler restarts. The health checker
 * runs it (scripts/health-checker.ts); one scoped read per step, through the
 * kernel port (the agent): natfarm's translation counters alone (iptables:
 * the nat DNAT rules of one `iptables-save -t nat`; nftables: the `backends`
 * set), not every chain of both tables.
 *
 * Bounded: 10-second samples are kept for an hour, minute samples for a day,
 * and a farm gets a sample only when its totals moved (with, after an idle
 * stretch, one of its unchanged totals a step earlier, so the rate is
 * measured over the step it happened in). At 2,000 idle farms nothing is
 * written.
 */
export const FINE = { stepMs: 10_000, keepMs: 3600_000 };
export const COARSE = { stepMs: 60_000, keepMs: 24 * 3600_000 };

interface Stored {
  at: number;
  connections: number;
  bytes: number;
}
/** What the sampler keeps per farm in TrafficState.state (JSON). */
interface FarmState {
  count: FarmCount;
  /** The last sample written per series, by step (ms). */
  last: Record<string, Stored>;
}

export interface SamplerDeps {
  db: Db;
  kernel: KernelPort;
  target: Target;
  /** The series (tests use short steps). */
  series?: { stepMs: number; keepMs: number }[];
  now?: () => number;
  /** False skips the step: a cluster's backup node, whose kernel serves no traffic, writes nothing to the shared database. */
  active?: () => boolean;
}

const countKey = (c: FarmCount) => JSON.stringify([c.connections, c.bytes, Object.entries(c.backends).map(([k, b]) => [k, b.raw, b.total])]);

export function createTrafficSampler(deps: SamplerDeps) {
  const series = deps.series ?? [FINE, COARSE];
  const now = deps.now ?? Date.now;
  let states: Map<string, FarmState> | null = null;
  let pruned = 0;
  // The last step that read the kernel: an idle stretch is known to be idle only while the sampler ran through it.
  let lastTick: number | null = null;

  async function load(): Promise<Map<string, FarmState>> {
    const rows = await deps.db.trafficState.findMany();
    const m = new Map<string, FarmState>();
    for (const r of rows) {
      try {
        m.set(r.farm, JSON.parse(r.state) as FarmState);
      } catch {
        /* a damaged row starts over */
      }
    }
    return m;
  }

  /** One step: read, add up, write what moved. Returns the farms sampled. */
  async function tick(): Promise<string[]> {
    const t = now();
    // Only the translation counters (a few thousand rules at 5,000 farms), not the whole tables.
    const snap = await deps.kernel.readNatfarmTables(deps.target, { translations: true });
    states ??= await load();
    const prev = new Map([...states].map(([farm, s]) => [farm, s.count]));
    const watched = lastTick !== null && t - lastTick < Math.min(...series.map((x) => x.stepMs)) * 1.5;
    const counts = advance(prev, countersOf(snap), t);
    const samples: { farm: string; at: Date; step: number; connections: number; bytes: number }[] = [];
    const changed: string[] = [];
    const gone: string[] = [];
    for (const [farm, count] of counts) {
      const old = states.get(farm);
      if (Object.keys(count.backends).length === 0) {
        // Not seen for a day (deleted, or stopped that long): forgotten; its samples age out.
        if (old) gone.push(farm);
        states.delete(farm);
        continue;
      }
      const s: FarmState = { count, last: { ...(old?.last ?? {}) } };
      // A counter read again unchanged is no write (at 2,000 idle farms a step writes nothing).
      let moved = !old || countKey(old.count) !== countKey(count);
      for (const { stepMs } of series) {
        const key = String(stepMs);
        const last = s.last[key];
        if (last && t - last.at < stepMs * 0.9) continue;
        if (last && last.connections === count.connections && last.bytes === count.bytes) continue;
        if (last && watched && t - last.at > stepMs * 1.5) samples.push({ farm, at: new Date(t - stepMs), step: stepMs / 1000, connections: last.connections, bytes: last.bytes });
        samples.push({ farm, at: new Date(t), step: stepMs / 1000, connections: count.connections, bytes: count.bytes });
        s.last[key] = { at: t, connections: count.connections, bytes: count.bytes };
        moved = true;
      }
      states.set(farm, s);
      if (moved) changed.push(farm);
    }
    const db = deps.db;
    const writes = [
      ...(samples.length ? [db.trafficSample.createMany({ data: samples })] : []),
      ...changed.map((farm) => {
        const state = JSON.stringify(states!.get(farm));
        return db.trafficState.upsert({ where: { farm }, create: { farm, at: new Date(t), state }, update: { at: new Date(t), state } });
      }),
      ...(gone.length ? [db.trafficState.deleteMany({ where: { farm: { in: gone } } })] : []),
    ];
    if (t - pruned >= 60_000) {
      pruned = t;
      for (const { stepMs, keepMs } of series) writes.push(db.trafficSample.deleteMany({ where: { step: stepMs / 1000, at: { lt: new Date(t - keepMs) } } }));
    }
    if (writes.length) await db.$transaction(writes);
    lastTick = t;
    return changed;
  }

  return {
    tick,
    /** Steps until the signal aborts; a failed step (the agent restarting) is reported and the next one tried. */
    async run(signal: AbortSignal, onError: (e: unknown) => void = () => {}): Promise<void> {
      const stepMs = Math.min(...series.map((s) => s.stepMs));
      while (!signal.aborted) {
        const started = now();
        try {
          if (deps.active?.() ?? true) await tick();
          else lastTick = null;
        } catch (e) {
          // Re-read from the database; the stretch it missed is averaged, not taken as idle.
          states = null;
          lastTick = null;
          onError(e);
        }
        await new Promise((r) => setTimeout(r, Math.max(250, stepMs - (now() - started))));
      }
    },
  };
}

export interface FarmTraffic {
  farm: string;
  /** Seconds between samples: 10 (the last hour) or 60 (the last day). */
  step: number;
  points: TrafficPoint[];
  /** When the newest sample was written: none yet means the sampler has not seen the farm move. */
  lastSample: string | null;
}

/** The farm page's graph: rates over the last hour (10 s) or day (1 min). */
export async function farmTraffic(db: Db, farm: string, range: "1h" | "24h", t = Date.now()): Promise<FarmTraffic> {
  const s = range === "1h" ? FINE : COARSE;
  const step = s.stepMs / 1000;
  const rows = await db.trafficSample.findMany({ where: { farm, step, at: { gte: new Date(t - s.keepMs - s.stepMs) } }, orderBy: { at: "asc" }, select: { at: true, connections: true, bytes: true } });
  return { farm, step, points: ratesOf(rows), lastSample: rows.length ? rows[rows.length - 1]!.at.toISOString() : null };
}
