import fs from "node:fs";
import path from "node:path";
import { NETNS_NAME } from "../privileged/target-text.ts";
import { acquireFlock, LockBusyError, removeLockFile } from "../sys/flock.ts";
import { lockDir } from "./lock.ts";

/**
 * The lock directory keeps a lock file per target (and the target's stamp
 * and journal) for good: a test run, a lab or a cluster lab leaves one set
 * per namespace it made, thousands over time. A namespace that no longer
 * exists has nothing left to guard: its files are removed, each only while
 * holding its lock (flock, without waiting: one somebody holds, or waits
 * for, is left alone) and after seeing again, under that lock, that the
 * namespace is still gone. Lockers check that the file they locked is still
 * the one at the path (acquireFlock), so removing one never lets two
 * processes hold a target's lock at once.
 *
 * Files any process used lately are left too (the newest of a namespace's
 * files younger than `minAgeMs`, 10 minutes by default: every lock taken
 * rewrites its file): a test's made-up target between an interrupted apply
 * and the next one that reports its journal, or a namespace about to be
 * made, keeps everything.
 *
 * Only names natfarm gives per namespace are touched: `netns_<name>.lock`,
 * `.stamp`, `.journal`, a stamp's temporary `.netns_<name>.stamp.<hex>`,
 * and the supervisor's `supervisor-target-netns_<name>-<hash>.lock`.
 */
const TARGET_FILE = /^netns_(.+)\.(lock|stamp|journal)$/;
const STAMP_TMP = /^\.netns_(.+)\.stamp\.[0-9a-f]{12}$/;
// The supervisor's name keeps at most 60 characters of the target: a longer name is not known whole, and is left.
const SUPERVISOR_TARGET = /^supervisor-target-netns_(.+)-[0-9a-f]{12}\.lock$/;
/** A stamp's temporary file younger than this may be one a running apply is about to rename. */
const TMP_GRACE_MS = 60_000;
export const PRUNE_MIN_AGE_MS = 10 * 60_000;

export interface PruneResult {
  /** Files removed. */
  removed: string[];
  /** Namespaces gone whose lock somebody holds: left for a later pass. */
  busy: string[];
}

export const netnsExists = (name: string): boolean => fs.existsSync(path.join("/run/netns", name));

export async function pruneStaleTargetFiles(opts: { dir?: string; namespaceExists?: (name: string) => boolean; now?: number; minAgeMs?: number } = {}): Promise<PruneResult> {
  const dir = opts.dir ?? lockDir();
  const exists = opts.namespaceExists ?? netnsExists;
  const now = opts.now ?? Date.now();
  const minAgeMs = opts.minAgeMs ?? PRUNE_MIN_AGE_MS;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return { removed: [], busy: [] };
  }
  const byName = new Map<string, { guarded: string[]; supervisor: string[]; newest: number }>();
  const of = (name: string) => {
    let g = byName.get(name);
    if (!g) byName.set(name, (g = { guarded: [], supervisor: [], newest: 0 }));
    return g;
  };
  const mtime = (e: string) => {
    try {
      return fs.statSync(path.join(dir, e)).mtimeMs;
    } catch {
      return 0;
    }
  };
  for (const e of entries) {
    let m = TARGET_FILE.exec(e);
    if (m) {
      const g = of(m[1]!);
      if (m[2] !== "lock") g.guarded.push(e);
      g.newest = Math.max(g.newest, mtime(e));
      continue;
    }
    m = STAMP_TMP.exec(e);
    if (m) {
      try {
        if (now - fs.statSync(path.join(dir, e)).mtimeMs > TMP_GRACE_MS) of(m[1]!).guarded.push(e);
      } catch {
        /* gone meanwhile */
      }
      continue;
    }
    m = SUPERVISOR_TARGET.exec(e);
    if (m && `netns_${m[1]}`.length < 60) {
      const g = of(m[1]!);
      g.supervisor.push(e);
      g.newest = Math.max(g.newest, mtime(e));
    }
  }
  const removed: string[] = [];
  const busy: string[] = [];
  for (const [name, files] of byName) {
    if (!NETNS_NAME.test(name) || now - files.newest < minAgeMs || exists(name)) continue;
    const locks = [{ lock: `netns_${name}.lock`, guarded: files.guarded }, ...files.supervisor.map((f) => ({ lock: f, guarded: [] as string[] }))];
    for (const l of locks) {
      const file = path.join(dir, l.lock);
      let held;
      try {
        held = await acquireFlock(file, { timeoutMs: 0, what: `removing the files of namespace ${name}, which is gone` });
      } catch (e) {
        if (e instanceof LockBusyError) {
          busy.push(name);
          break;
        }
        continue;
      }
      // Seen again under the lock: a namespace made meanwhile keeps its files.
      if (exists(name)) {
        held.release();
        break;
      }
      if (removeLockFile(held, l.guarded.map((g) => path.join(dir, g)))) removed.push(...l.guarded, l.lock);
    }
  }
  return { removed, busy };
}

let pruned: Promise<PruneResult> | null = null;
/** Once per process (the agent at start, a CLI run, a test file at its first apply): never in an apply's way. */
export function pruneStaleTargetFilesOnce(): Promise<PruneResult> {
  pruned ??= pruneStaleTargetFiles().catch(() => ({ removed: [], busy: [] }));
  return pruned;
}
