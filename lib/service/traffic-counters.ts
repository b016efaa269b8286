import type { TablesSnapshot } from "../applier/tables.ts";

/**
 * natfarm's per-backend traffic counters, read from a live tables snapshot
 * of either engine, and kept as totals that only grow.
 *
 * Which counters: a backend's translation counts each new connection once
 * (iptables: its DNAT rule in nat, which sees only a connection's first
 * packet; nftables: its element of the `backends` set, counted by
 * `count_backend` for every new connection given its mark). The MARK rules
 * do not: MARK does not end the walk, so a farm's first MARK rule matches
 * every new connection of the farm whoever ends up with it. Bytes are what
 * the same counters hold: the bytes of the connections' first packets, not
 * of the whole connections (no natfarm rule sees every packet of a farm).
 *
 * Totals across resets: when a farm is rewritten (a health-driven change, a
 * one-farm apply, an engine switch) the kernel may start a counter again at
 * 0. A counter lower than last time is taken as restarted: what it holds now
 * was counted since, and is added; what it counted between the last sample
 * and the restart is lost (a sampling step at most).
 */
export interface CounterReading {
  farm: string;
  mark: number;
  packets: number;
  bytes: number;
}

const MARK_MATCH = /--mark (0x[0-9a-f]+|\d+)\b/i;

export function countersOf(snap: TablesSnapshot): CounterReading[] {
  const byMark = new Map<number, CounterReading>();
  const add = (farm: string, mark: number, packets: number, bytes: number) => {
    if (!Number.isSafeInteger(mark)) return;
    const r = byMark.get(mark);
    // Two translations of one mark exist only for a moment (make-before-break): they count one backend.
    if (r && r.farm === farm) {
      r.packets += packets;
      r.bytes += bytes;
    } else if (!r) byMark.set(mark, { farm, mark, packets, bytes });
  };
  for (const t of snap.tables) {
    if (t.name === "nat") {
      for (const c of t.chains) {
        for (const r of c.rules) {
          if (!r.owned || !r.farm || r.target !== "DNAT") continue;
          const m = MARK_MATCH.exec(r.spec);
          if (m) add(r.farm, Number(m[1]), r.packets, r.bytes);
        }
      }
    } else if (t.name.startsWith("nftables ")) {
      // The nftables engine's snapshot: one "table" (`nftables ip natfarm`) whose maps and sets are listed as chains.
      for (const c of t.chains) {
        if (!c.name.startsWith("set backends ")) continue;
        for (const r of c.rules) {
          if (!r.farm) continue;
          const key = r.spec.split(/\s/, 1)[0] ?? "";
          if (/^(0x[0-9a-f]+|\d+)$/i.test(key)) add(r.farm, Number(key), r.packets, r.bytes);
        }
      }
    }
  }
  return [...byMark.values()];
}

/** A backend's counter as last read (raw) and what it has counted in all (total), both [packets, bytes]. */
export interface BackendCount {
  raw: [number, number];
  total: [number, number];
  /** When the counter was last seen (ms): one not seen for a day is forgotten. */
  seen: number;
}

export interface FarmCount {
  /** New connections and their first packets' bytes counted in all, whatever the resets. */
  connections: number;
  bytes: number;
  backends: Record<string, BackendCount>;
}

export const FORGET_UNSEEN_MS = 24 * 3600_000;

/**
 * The totals after one reading. A farm absent from the reading (stopped, or
 * a read that missed it) keeps its totals; a backend absent keeps its last
 * counter for a day, so that one coming back with the same counter (the read
 * missed it) is not counted twice, while one re-written from 0 counts from 0.
 * A backend seen for the first time counts what its counter holds (counted
 * since its rule was written).
 */
export function advance(prev: ReadonlyMap<string, FarmCount>, reading: readonly CounterReading[], now: number): Map<string, FarmCount> {
  const next = new Map<string, FarmCount>();
  for (const [farm, f] of prev) next.set(farm, { connections: f.connections, bytes: f.bytes, backends: { ...f.backends } });
  for (const r of reading) {
    let f = next.get(r.farm);
    if (!f) next.set(r.farm, (f = { connections: 0, bytes: 0, backends: {} }));
    const key = String(r.mark);
    const p = f.backends[key];
    const raw: [number, number] = [r.packets, r.bytes];
    // Lower than last time: the rule was written again and its counter restarted; what it holds was counted since.
    const restarted = !p || raw[0] < p.raw[0] || raw[1] < p.raw[1];
    const delta: [number, number] = restarted ? raw : [raw[0] - p.raw[0], raw[1] - p.raw[1]];
    f.connections += delta[0];
    f.bytes += delta[1];
    f.backends[key] = { raw, total: [(p?.total[0] ?? 0) + delta[0], (p?.total[1] ?? 0) + delta[1]], seen: now };
  }
  for (const f of next.values()) {
    for (const [k, b] of Object.entries(f.backends)) if (now - b.seen > FORGET_UNSEEN_MS) delete f.backends[k];
  }
  return next;
}

/** A point of a farm's traffic graph: the rates from `from` to `at`. */
export interface TrafficPoint {
  from: string;
  at: string;
  connectionsPerS: number;
  bytesPerS: number;
}

/**
 * Rates from a farm's samples (oldest first): each pair of neighbours gives
 * the rate over the time between them, so a sample written after an idle
 * stretch (the sampler writes only farms whose totals moved, with the totals
 * of the step before) gives 0 over the stretch and the real rate over its
 * step. A fall in the totals (a farm deleted and made again under the same
 * name) starts over from there.
 */
export function ratesOf(samples: readonly { at: Date; connections: number; bytes: number }[]): TrafficPoint[] {
  const out: TrafficPoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const s = (b.at.getTime() - a.at.getTime()) / 1000;
    if (s <= 0) continue;
    const dc = b.connections - a.connections;
    const db = b.bytes - a.bytes;
    out.push({ from: a.at.toISOString(), at: b.at.toISOString(), connectionsPerS: dc >= 0 ? dc / s : 0, bytesPerS: db >= 0 ? db / s : 0 });
  }
  return out;
}
