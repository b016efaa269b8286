import { mkdir, open, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { formatTarget, type Target } from "../privileged/target.ts";

/**
 * One apply at a time per target: a promise chain inside this process and an
 * exclusive lock file across processes (the console and a CLI run may race).
 * A lock file whose owner died is taken over.
 */
const LOCK_DIR = process.env.NATFARM_LOCK_DIR ?? (process.getuid?.() === 0 ? "/run/lock/natfarm" : path.join(process.env.TMPDIR ?? "/tmp", "natfarm-locks"));
const inProcess = new Map<string, Promise<unknown>>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function acquireFile(file: string, timeoutMs: number): Promise<() => Promise<void>> {
  await mkdir(path.dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(file, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await unlink(file).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (!owner || !alive(owner)) {
        await unlink(file).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another natfarm apply (pid ${owner}) holds the lock ${file}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export async function withTargetLock<T>(target: Target, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const name = formatTarget(target).replace(/[^A-Za-z0-9_.-]/g, "_");
  const previous = inProcess.get(name) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(async () => {
    const release = await acquireFile(path.join(LOCK_DIR, `${name}.lock`), timeoutMs);
    try {
      return await fn();
    } finally {
      await release();
    }
  });
  inProcess.set(name, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(name) === run) inProcess.delete(name);
  }
}
