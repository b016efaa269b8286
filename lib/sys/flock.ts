import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { execa } from "execa";

/**
 * Kernel-backed exclusive locks: flock(2) on an open file description, taken
 * by util-linux's `flock` on a descriptor this process holds (Node has no
 * flock of its own). The kernel releases the lock when the last descriptor of
 * that file description closes — when the holder exits, is killed with -9, or
 * is OOM-killed — so there is no stale lock to detect and no pid to trust.
 * Children that must keep the lock while they run (an `iptables-restore` that
 * outlives a killed parent) inherit the descriptor (`fd`), and the lock lasts
 * until they end too.
 */
export interface HeldLock {
  readonly file: string;
  /** The descriptor that holds the lock: pass it to children that must keep it while they run. */
  readonly fd: number;
  release(): void;
}

export interface LockHolder {
  pid: number;
  since: string;
  what: string;
}

export class LockBusyError extends Error {
  constructor(
    readonly file: string,
    readonly holder: LockHolder | null,
    waitedMs: number,
  ) {
    const who = holder ? `pid ${holder.pid} (${holder.what}, since ${holder.since})` : "another process";
    super(`${who} holds the lock ${file}; gave up after ${Math.round(waitedMs / 100) / 10} s`);
    this.name = "LockBusyError";
  }
}

/** Lock files live in one directory whoever runs natfarm: sticky and world-writable like /run/lock itself. */
export function ensureLockDir(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true, mode: 0o1777 });
  // mkdir's mode is filtered by the umask.
  fs.chmodSync(dir, 0o1777);
}

function openLockFile(file: string): { fd: number; writable: boolean } {
  try {
    return { fd: fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644), writable: true };
  } catch (e) {
    // Another user's lock file: flock(2) works on a read-only descriptor too.
    if ((e as NodeJS.ErrnoException).code !== "EACCES") throw e;
    return { fd: fs.openSync(file, fs.constants.O_RDONLY), writable: false };
  }
}

/** Who holds (or last held) a lock, as its holder wrote it: for messages only, never for deciding. */
export function readLockHolder(file: string): LockHolder | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LockHolder>;
    return typeof v.pid === "number" ? { pid: v.pid, since: String(v.since ?? "?"), what: String(v.what ?? "?") } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the exclusive lock on `file`, waiting up to `timeoutMs` (0: do not
 * wait). Throws LockBusyError when it stays held.
 */
export async function acquireFlock(file: string, opts: { timeoutMs: number; what: string }): Promise<HeldLock> {
  ensureLockDir(path.dirname(file));
  const started = Date.now();
  for (;;) {
    const { fd, writable } = openLockFile(file);
    try {
      // Free (the usual case): taken at once by flock(2) itself, without a process start (5–15 ms, most of a one-farm change).
      if (!tryFlockNow(fd)) {
        const left = opts.timeoutMs - (Date.now() - started);
        const wait = opts.timeoutMs > 0 ? ["-w", String(Math.max(left, 1) / 1000)] : ["-n"];
        // `flock N` locks the descriptor it inherits as N: the same open file description as ours.
        // (execa's types only accept numeric literals for a descriptor, hence the cast.)
        const r = await execa("flock", ["-x", ...wait, "3"], { stdio: ["ignore", "ignore", "pipe", fd as 3], reject: false, env: { LC_ALL: "C" } });
        if (r.exitCode === 1) throw new LockBusyError(file, readLockHolder(file), Date.now() - started);
        if (r.exitCode !== 0) throw new Error(`flock ${file} failed: ${String(r.stderr ?? "").trim() || r.shortMessage}`);
      }
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    // A stale lock file is removed only by a process holding its lock (removeLockFile): one that
    // waited on the removed file now holds a lock nobody else can see, and takes the new file's.
    if (isSameFile(fd, file)) return held(file, fd, writable, opts.what);
    fs.closeSync(fd);
  }
}

function isSameFile(fd: number, file: string): boolean {
  try {
    const a = fs.fstatSync(fd);
    const b = fs.statSync(file);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/**
 * Removes a lock file whose lock `lock` holds (and the files it guards,
 * first): the only safe way to delete a lock file. Whoever opened it
 * meanwhile and waits gets the lock on the removed file, sees that the path
 * no longer names it (acquireFlock), and takes a new one. Then releases.
 * False when it could not be removed (another user's file in the sticky
 * directory): it stays, still a valid lock.
 */
export function removeLockFile(lock: HeldLock, guarded: readonly string[] = []): boolean {
  try {
    if (!isSameFile(lock.fd, lock.file)) return false;
    for (const f of guarded) fs.rmSync(f, { force: true });
    fs.unlinkSync(lock.file);
    return true;
  } catch {
    return false;
  } finally {
    lock.release();
  }
}

function held(file: string, fd: number, writable: boolean, what: string): HeldLock {
  if (writable) {
    const holder: LockHolder = { pid: process.pid, since: new Date().toISOString(), what };
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
  }
  let isHeld = true;
  return {
    file,
    fd,
    release() {
      if (!isHeld) return;
      isHeld = false;
      fs.closeSync(fd);
    },
  };
}

const LOCK_EX = 2;
const LOCK_NB = 4;
let nativeFlock: ((fd: number, op: number) => number) | null | undefined;
/**
 * flock(fd, LOCK_EX | LOCK_NB) through koffi when it is installed: true when
 * the lock is now held; false when it is busy or there is no koffi (then
 * util-linux's flock waits for it as before). The same kernel lock either way.
 */
function tryFlockNow(fd: number): boolean {
  if (nativeFlock === undefined) {
    try {
      const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
      nativeFlock = koffi.load("libc.so.6").func("int flock(int fd, int operation)") as (fd: number, op: number) => number;
    } catch {
      nativeFlock = null;
    }
  }
  return nativeFlock !== null && nativeFlock(fd, LOCK_EX | LOCK_NB) === 0;
}
