import type { HealthCheck } from "../farms/schema.ts";
import { HealthMonitor, type Health, type Transition } from "./monitor.ts";
import { probe as realProbe, probePort, type ProbeResult } from "./probe.ts";

/**
 * The health checker's loop, without I/O of its own: where farms come from
 * and what a state change does are passed in, so the same core runs in the
 * checker process and in tests. Backends in maintenance are left alone: an
 * operator put them there.
 */
export interface CheckedBackend {
  mark: number;
  ip: string;
  port: number | null;
  state: string;
}

export interface CheckedFarm {
  name: string;
  ports: string;
  healthcheck: HealthCheck;
  backends: CheckedBackend[];
}

export interface HealthChange extends Transition {
  farm: string;
  mark: number;
  backend: string;
}

export interface CheckerDeps {
  loadFarms(): Promise<CheckedFarm[]>;
  /** A backend crossed its threshold: persist it and apply the farm. */
  setState(change: HealthChange): Promise<void>;
  /** Every probe's outcome (for "last checked" in the console). */
  recordProbe?(farm: string, mark: number, result: ProbeResult): Promise<void>;
  probe?: (check: HealthCheck, ip: string, port: number) => Promise<ProbeResult>;
  /**
   * In a cluster every node probes, but only the master changes a backend's
   * state (two nodes deciding on different probe timings would flap the
   * shared database): a reason string defers the change, which is then
   * neither persisted nor applied. The backup's probes still run, so it has
   * its view ready when it becomes master.
   */
  mayChangeState?: () => string | null;
  /** A change this node saw but left to the master. */
  onDeferred?: (change: HealthChange, reason: string) => void;
  now?: () => number;
  /** Probes running at once. */
  concurrency?: number;
}

export class HealthChecker {
  private readonly monitor = new HealthMonitor();
  private readonly due = new Map<string, number>();

  constructor(private readonly deps: CheckerDeps) {}

  /** Probes every backend whose interval has passed; returns the state changes it made. */
  async tick(): Promise<HealthChange[]> {
    const now = (this.deps.now ?? Date.now)();
    const farms = await this.deps.loadFarms();
    const jobs: { farm: CheckedFarm; backend: CheckedBackend; key: string; port: number }[] = [];
    const seen = new Set<string>();
    for (const farm of farms) {
      for (const backend of farm.backends) {
        if (backend.state !== "up" && backend.state !== "down") continue;
        const port = probePort(farm.healthcheck, backend, farm.ports);
        if (port === null) continue;
        const key = `${farm.name}|${backend.mark}`;
        seen.add(key);
        if ((this.due.get(key) ?? 0) > now) continue;
        this.due.set(key, now + farm.healthcheck.interval * 1000);
        jobs.push({ farm, backend, key, port });
      }
    }
    for (const key of this.due.keys()) if (!seen.has(key)) this.due.delete(key);
    this.monitor.forget(seen);

    const probe = this.deps.probe ?? realProbe;
    const changes: HealthChange[] = [];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const { farm, backend, key, port } = jobs[next++]!;
        const result = await probe(farm.healthcheck, backend.ip, port);
        await this.deps.recordProbe?.(farm.name, backend.mark, result);
        const t = this.monitor.observe(key, backend.state as Health, result.ok, result.detail, farm.healthcheck);
        if (t) {
          const change: HealthChange = { ...t, farm: farm.name, mark: backend.mark, backend: `${backend.ip}:${port}` };
          const no = this.deps.mayChangeState?.() ?? null;
          if (no !== null) {
            // The database still says `from`: the monitor starts over from it at the next probe (observe's reset).
            this.deps.onDeferred?.(change, no);
            continue;
          }
          await this.deps.setState(change);
          changes.push(change);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deps.concurrency ?? 32, jobs.length) }, worker));
    return changes;
  }

  /** Ticks every second until the signal aborts. */
  async run(signal: AbortSignal, onError: (e: unknown) => void = () => {}): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (e) {
        onError(e);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
