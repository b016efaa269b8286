import { createHash } from "node:crypto";
import path from "node:path";
import { acquireFlock, LockBusyError, readLockHolder, type HeldLock, type LockHolder } from "../sys/flock.ts";

/**
 * One natfarm per installation. What makes two `npm start`s "the same
 * installation" is any resource they would fight over:
 *
 *   - the database file: two supervisors on one database run two health
 *     checkers (duplicate health events, double applies) and race their
 *     migrations;
 *   - the target: two consoles restoring different databases into one kernel
 *     (or one lab) remove each other's farms;
 *   - the port: the second web server can only fail with EADDRINUSE forever.
 *
 * The supervisor takes one kernel lock (flock) per resource, without waiting,
 * before it does anything else, and keeps them for its whole life: the kernel
 * drops them when it dies, however it dies. Node opens files close-on-exec,
 * so the children it starts never hold them (only acquireFlock's short-lived
 * `flock` helper sees the descriptor, and it has exited by then).
 */
export interface InstanceResource {
  /** What the lock protects, for the message: `database /x/natfarm.db`. */
  label: string;
  file: string;
}

export const supervisorLockDir = (env: NodeJS.ProcessEnv = process.env) => env.NATFARM_LOCK_DIR || "/run/lock/natfarm";

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 60);
const shortHash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 12);

export function instanceResources(o: { databaseFile: string; target: string | null; port: number; agentSocket?: string; lockDir?: string }): InstanceResource[] {
  const dir = o.lockDir ?? supervisorLockDir();
  const list: InstanceResource[] = [
    { label: `database ${o.databaseFile}`, file: path.join(dir, `supervisor-db-${safe(path.basename(o.databaseFile))}-${shortHash(o.databaseFile)}.lock`) },
  ];
  // Not the applier's own per-target lock file (that one is taken for every apply, by the children too).
  if (o.target) list.push({ label: `target ${o.target}`, file: path.join(dir, `supervisor-target-${safe(o.target)}-${shortHash(o.target)}.lock`) });
  list.push({ label: `port ${o.port}`, file: path.join(dir, `supervisor-port-${o.port}.lock`) });
  // Two installations on one machine need their own agent sockets (NATFARM_AGENT_SOCKET).
  if (o.agentSocket) list.push({ label: `agent socket ${o.agentSocket}`, file: path.join(dir, `supervisor-agent-${safe(path.basename(o.agentSocket))}-${shortHash(o.agentSocket)}.lock`) });
  return list;
}

export class AlreadyRunningError extends Error {
  constructor(
    readonly resource: InstanceResource,
    readonly holder: LockHolder | null,
  ) {
    const who = holder ? `pid ${holder.pid} (${holder.what}, since ${holder.since})` : "another process";
    super(
      `already running for this installation: ${who} holds the lock on its ${resource.label} (${resource.file}). ` +
        `Not starting a second copy${holder ? `; stop that one first (kill ${holder.pid})` : ""}.`,
    );
    this.name = "AlreadyRunningError";
  }
}

/** Takes every resource's lock without waiting, or none: throws AlreadyRunningError naming the holder. */
export async function lockInstance(resources: InstanceResource[], what: string): Promise<HeldLock[]> {
  const held: HeldLock[] = [];
  try {
    for (const r of resources) {
      try {
        held.push(await acquireFlock(r.file, { timeoutMs: 0, what }));
      } catch (e) {
        if (e instanceof LockBusyError) throw new AlreadyRunningError(r, e.holder ?? readLockHolder(r.file));
        throw e;
      }
    }
    return held;
  } catch (e) {
    for (const h of held) h.release();
    throw e;
  }
}
