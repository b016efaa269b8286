/**
 * Turns probe results into state changes: `failures` failed probes in a row
 * take an up backend down, `passes` good ones in a row bring a down backend
 * back. One flapping probe changes nothing.
 */
export type Health = "up" | "down";

export interface Transition {
  key: string;
  from: Health;
  to: Health;
  detail: string;
}

interface Track {
  state: Health;
  streak: number;
}

export class HealthMonitor {
  private readonly tracks = new Map<string, Track>();

  /** `current`: the state the backend has now (from the database), used the first time a key is seen. */
  observe(key: string, current: Health, ok: boolean, detail: string, thresholds: { failures: number; passes: number }): Transition | null {
    let t = this.tracks.get(key);
    if (!t || t.state !== current) this.tracks.set(key, (t = { state: current, streak: 0 }));
    const healthy = t.state === "up";
    if (ok === healthy) {
      t.streak = 0;
      return null;
    }
    t.streak++;
    const needed = healthy ? thresholds.failures : thresholds.passes;
    if (t.streak < needed) return null;
    const from = t.state;
    t.state = healthy ? "down" : "up";
    t.streak = 0;
    return { key, from, to: t.state, detail };
  }

  forget(keep: ReadonlySet<string>): void {
    for (const key of this.tracks.keys()) if (!keep.has(key)) this.tracks.delete(key);
  }
}
