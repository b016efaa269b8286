import { spawn, type ChildProcess } from "node:child_process";
import { execArgv, PARENT_PID_ENV, type ChildSpec } from "./children.ts";

/**
 * Runs a declared list of children and keeps them running:
 *
 * - each child is started through execArgv() (setpriv --pdeathsig KILL, in
 *   its namespace and as its user), in its own process group;
 * - a child that ends, whatever the reason, is logged and started again after
 *   a back-off that doubles from `initialMs` to `maxMs` and goes back to
 *   `initialMs` once a run lasted `resetAfterMs`; whatever the child left in
 *   its process group is ended first (SIGTERM, SIGKILL after the grace), so a
 *   stale process never holds the port or the lock the new one needs;
 * - stop() ends the children in reverse order (SIGTERM to the group, SIGKILL
 *   after the grace period) and resolves when they are gone.
 *
 * When the supervisor itself dies (even by SIGKILL) the kernel kills every
 * child (the parent-death signal), so there are no orphans to find later.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the back-off to initialMs. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, resetAfterMs: 10_000 };

export interface SupervisorOptions {
  log: (message: string) => void;
  backoff?: BackoffOptions;
  /** SIGTERM → SIGKILL grace when stopping a child (per child: ChildSpec.stopGraceMs). */
  stopGraceMs?: number;
  /** The environment every child starts from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The delay before restart number `n` (0-based) of a child whose last run lasted `uptimeMs`. */
export function nextDelay(previousMs: number | null, uptimeMs: number, b: BackoffOptions = DEFAULT_BACKOFF): number {
  if (previousMs === null || uptimeMs >= b.resetAfterMs) return b.initialMs;
  return Math.min(previousMs * 2, b.maxMs);
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True while any process of process group `pgid` exists (zombies included, they go within moments). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone already */
  }
}

async function waitUntil(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() >= end) return false;
    await sleep(50);
  }
  return true;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess | null;
  pid: number | null;
  startedAt: number;
  exited: Promise<void> | null;
  delayMs: number | null;
  timer: NodeJS.Timeout | null;
  starts: number;
}

export interface ChildStatus {
  name: string;
  pid: number | null;
  starts: number;
}

export class Supervisor {
  private readonly running: Running[];
  private readonly backoff: BackoffOptions;
  private readonly graceMs: number;
  private stopping: Promise<void> | null = null;
  private hurried = false;

  constructor(
    specs: ChildSpec[],
    private readonly opts: SupervisorOptions,
  ) {
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new Error(`two children are named ${s.name}`);
      names.add(s.name);
    }
    this.running = specs.map((spec) => ({ spec, child: null, pid: null, startedAt: 0, exited: null, delayMs: null, timer: null, starts: 0 }));
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.graceMs = opts.stopGraceMs ?? 10_000;
  }

  start(): void {
    for (const r of this.running) this.launch(r);
  }

  status(): ChildStatus[] {
    return this.running.map((r) => ({ name: r.spec.name, pid: r.pid, starts: r.starts }));
  }

  private launch(r: Running): void {
    r.timer = null;
    if (this.stopping) return;
    const argv = execArgv(r.spec);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: r.spec.cwd,
      env: { ...(this.opts.env ?? process.env), ...r.spec.env, [PARENT_PID_ENV]: String(process.pid) },
      // Own process group: a stop or a restart ends everything the child started, and the
      // terminal's Ctrl-C reaches only the supervisor, which stops the children in order.
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
    });
    r.child = child;
    r.pid = child.pid ?? null;
    r.startedAt = Date.now();
    r.starts++;
    this.opts.log(`${r.spec.name} started (pid ${r.pid ?? "?"}${r.starts > 1 ? `, start ${r.starts}` : ""}): ${argv.join(" ")}`);
    let settled = false;
    r.exited = new Promise<void>((resolve) => {
      const onEnd = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (settled) return;
        settled = true;
        void this.ended(r, child, code, signal, error).finally(resolve);
      };
      child.once("exit", (code, signal) => onEnd(code, signal));
      // spawn failures (argv[0] missing): no exit event follows.
      child.once("error", (e) => {
        if (child.pid === undefined) onEnd(null, null, e);
      });
    });
  }

  private async ended(r: Running, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: Error): Promise<void> {
    const pid = child.pid;
    const uptime = Date.now() - r.startedAt;
    if (!this.stopping) {
      this.opts.log(`${r.spec.name} (pid ${pid ?? "?"}) ${error ? `could not start: ${error.message}` : describeExit(code, signal)} after ${seconds(uptime)}`);
    }
    // Whatever the child started in its group must not outlive it (a forked server still holding the port).
    if (pid !== undefined && groupAlive(pid)) {
      if (!this.stopping) this.opts.log(`${r.spec.name}: ending what is left of its process group ${pid}`);
      signalGroup(pid, this.hurried ? "SIGKILL" : "SIGTERM");
      if (!(await waitUntil(() => !groupAlive(pid), this.hurried ? 0 : (r.spec.stopGraceMs ?? this.graceMs)))) {
        signalGroup(pid, "SIGKILL");
        await waitUntil(() => !groupAlive(pid), 5000);
      }
    }
    r.child = null;
    r.pid = null;
    if (this.stopping) return;
    r.delayMs = nextDelay(r.delayMs, uptime, this.backoff);
    this.opts.log(`${r.spec.name}: restarting in ${seconds(r.delayMs)}`);
    r.timer = setTimeout(() => this.launch(r), r.delayMs);
  }

  /** Ends every child (reverse order: dependants before what they depend on) and resolves when all are gone. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const r of this.running) {
        if (r.timer) clearTimeout(r.timer);
        r.timer = null;
      }
      for (const r of [...this.running].reverse()) await this.stopOne(r);
    })();
    return this.stopping;
  }

  /** A second stop request: no more grace, SIGKILL whatever is left. */
  hurry(): void {
    this.hurried = true;
    for (const r of this.running) if (r.pid !== null) signalGroup(r.pid, "SIGKILL");
  }

  private async stopOne(r: Running): Promise<void> {
    const { child, pid, exited } = r;
    if (!child || pid === null || !exited) return;
    const grace = r.spec.stopGraceMs ?? this.graceMs;
    this.opts.log(`stopping ${r.spec.name} (pid ${pid})`);
    signalGroup(pid, this.hurried ? "SIGKILL" : "SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(grace).then(() => false)]);
    if (!done) {
      this.opts.log(`${r.spec.name} (pid ${pid}) still running after ${seconds(grace)}: SIGKILL`);
      signalGroup(pid, "SIGKILL");
      await Promise.race([exited, sleep(5000)]);
    }
  }
}
