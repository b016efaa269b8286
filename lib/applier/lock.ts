import path from "node:path";
import { acquireFlock, type HeldLock } from "../sys/flock.ts";
import { formatTarget, type Target } from "../privileged/target-text.ts";
import { pruneStaleTargetFilesOnce } from "./prune.ts";

/**
 * One apply at a time per target: a promise chain inside this process and a
 * kernel lock (flock) across processes — the console, the checker, the agent
 * and CLI runs all take the same one. The kernel drops it when its holder
 * dies, and children started under it inherit it, so a killed apply whose
 * iptables-restore still runs keeps others out until that restore ends.
 */
export const lockDir = () => process.env.NATFARM_LOCK_DIR || "/run/lock/natfarm";
const inProcess = new Map<string, Promise<unknown>>();

export function targetLockName(target: Target): string {
  return formatTarget(target).replace(/[^A-Za-z0-9_.-]/g, "_");
}

export function targetLockFile(target: Target): string {
  return path.join(lockDir(), `${targetLockName(target)}.lock`);
}

export async function withTargetLock<T>(target: Target, timeoutMs: number, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
  const name = targetLockName(target);
  const previous = inProcess.get(name) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(async () => {
    const lock = await acquireFlock(targetLockFile(target), { timeoutMs, what: `apply to ${formatTarget(target)}` });
    try {
      return await fn(lock);
    } finally {
      lock.release();
    }
  });
  inProcess.set(name, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(name) === run) inProcess.delete(name);
    // After the first apply (not in its way): the files of namespaces that are gone (prune.ts).
    void pruneStaleTargetFilesOnce();
  }
}
