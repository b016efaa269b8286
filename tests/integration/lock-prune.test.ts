import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { pruneStaleTargetFiles } from "../../lib/applier/prune.ts";
import { acquireFlock, LockBusyError } from "../../lib/sys/flock.ts";
import { holdsOf, overlaps } from "../helpers/lock-holds.ts";
import { createNetns, deleteNetns } from "../helpers/netns.ts";

/**
 * Lock, stamp and journal files of namespaces that are gone are removed,
 * each only under its own lock, never one somebody holds, and never so that
 * two processes hold a target's lock at once (real flock, real processes,
 * real namespaces; a lock directory of the test's own).
 */
const ROOT = path.join(import.meta.dirname, "..", "..");
const HOLDER = path.join(ROOT, "tests", "fixtures", "lock-holder.ts");
const base = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-lock-prune-"));
const made: string[] = [];
afterAll(async () => {
  for (const n of made) await deleteNetns(n);
  fs.rmSync(base, { recursive: true, force: true });
});

/** A name no namespace has (checked), for a namespace that is "gone". */
const goneName = () => `lkpgone${randomBytes(4).toString("hex")}`;
const fresh = (name: string) => {
  const dir = path.join(base, name);
  fs.mkdirSync(dir);
  return dir;
};
const touch = (dir: string, f: string, ageMs = 0) => {
  fs.writeFileSync(path.join(dir, f), "{}\n");
  if (ageMs) fs.utimesSync(path.join(dir, f), new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
};

describe("stale target files in the lock directory", () => {
  it("removes a gone namespace's lock, stamp, journal, old stamp temporaries and supervisor lock; keeps live namespaces', held locks, files used lately and everything else", async () => {
    const dir = fresh("mixed");
    const gone = goneName();
    const heldGone = goneName();
    const lately = goneName();
    const HOUR = 3600_000;
    const { name: live } = await createNetns("lkp");
    made.push(live);
    for (const f of [`netns_${gone}.lock`, `netns_${gone}.stamp`, `netns_${gone}.journal`, `.netns_${gone}.stamp.0123456789ab`, `supervisor-target-netns_${gone}-0123456789ab.lock`]) touch(dir, f, HOUR);
    // A gone namespace's files used a minute ago (a test's made-up target between two applies): kept by default.
    touch(dir, `netns_${lately}.lock`, 60_000);
    touch(dir, `netns_${lately}.journal`, 60_000);
    // A temporary stamp just written may be renamed any moment by the apply that wrote it.
    touch(dir, `.netns_${gone}.stamp.ba9876543210`);
    for (const f of [`netns_${live}.lock`, `netns_${live}.stamp`, "host.lock", "supervisor-port-3000.lock", "supervisor-db-natfarm.db-0123456789ab.lock", `netns_${heldGone}.stamp`, "netns_.lock", "notes.txt"]) touch(dir, f);
    // A gone namespace's lock that another process holds (an apply that has not noticed yet).
    const holder = execa(process.execPath, ["--import", "tsx", HOLDER, `netns:${heldGone}`, path.join(dir, "..", "held.log"), "1", "30000"], { cwd: ROOT, reject: false, env: { NATFARM_LOCK_DIR: dir } });
    try {
      await expect.poll(() => fs.existsSync(path.join(base, "held.log")) && fs.readFileSync(path.join(base, "held.log"), "utf8"), { timeout: 20_000, interval: 50 }).toMatch(/enter/);
      const r = await pruneStaleTargetFiles({ dir });
      expect(r.removed.sort()).toEqual([`.netns_${gone}.stamp.0123456789ab`, `netns_${gone}.journal`, `netns_${gone}.lock`, `netns_${gone}.stamp`, `supervisor-target-netns_${gone}-0123456789ab.lock`].sort());
      expect(r.busy).toEqual([]);
      const kept = [`.netns_${gone}.stamp.ba9876543210`, `netns_${live}.lock`, `netns_${live}.stamp`, "host.lock", "supervisor-port-3000.lock", "supervisor-db-natfarm.db-0123456789ab.lock", `netns_${heldGone}.lock`, `netns_${heldGone}.stamp`, "netns_.lock", "notes.txt"];
      expect(fs.readdirSync(dir).sort()).toEqual([...kept, `netns_${lately}.lock`, `netns_${lately}.journal`].sort());
      // Whatever their age, a held lock is left (and its namespace's files with it).
      const now = await pruneStaleTargetFiles({ dir, minAgeMs: 0 });
      expect(now.removed.sort()).toEqual([`netns_${lately}.journal`, `netns_${lately}.lock`]);
      expect(now.busy).toEqual([heldGone]);
      expect(fs.readdirSync(dir).sort()).toEqual(kept.sort());
      // The holder still holds its lock: the pass took nothing from it.
      await expect(acquireFlock(path.join(dir, `netns_${heldGone}.lock`), { timeoutMs: 0, what: "test" })).rejects.toBeInstanceOf(LockBusyError);
    } finally {
      holder.kill("SIGKILL");
      await holder;
    }
    // Its holder gone, the next pass removes them too.
    expect((await pruneStaleTargetFiles({ dir, minAgeMs: 0 })).removed.sort()).toEqual([`netns_${heldGone}.lock`, `netns_${heldGone}.stamp`]);
  });

  it("a namespace made again while its files are looked at keeps them", async () => {
    const dir = fresh("reborn");
    const name = goneName();
    touch(dir, `netns_${name}.lock`);
    touch(dir, `netns_${name}.stamp`);
    let asked = 0;
    // Gone when the directory is read, there again once its lock is held.
    const r = await pruneStaleTargetFiles({ dir, minAgeMs: 0, namespaceExists: () => asked++ > 0 });
    expect(r.removed).toEqual([]);
    expect(fs.readdirSync(dir).sort()).toEqual([`netns_${name}.lock`, `netns_${name}.stamp`]);
  });

  it("one waiting for a lock whose file is removed takes the new file's lock: never two holders", async () => {
    const dir = fresh("waiter");
    const file = path.join(dir, `netns_${goneName()}.lock`);
    const first = await acquireFlock(file, { timeoutMs: 0, what: "test: first" });
    const waiting = acquireFlock(file, { timeoutMs: 10_000, what: "test: waiting" });
    await new Promise((r) => setTimeout(r, 200));
    fs.unlinkSync(file);
    first.release();
    const second = await waiting;
    try {
      // It holds the lock of the file at the path, so a third process is refused.
      expect(fs.fstatSync(second.fd).ino).toBe(fs.statSync(file).ino);
      await expect(acquireFlock(file, { timeoutMs: 0, what: "test: third" })).rejects.toBeInstanceOf(LockBusyError);
    } finally {
      second.release();
    }
  });

  it("6 processes taking a gone namespace's lock 20 times each while passes remove its file: no two holds overlap", async () => {
    const dir = fresh("race");
    const target = `netns:${goneName()}`;
    const log = path.join(base, "race.log");
    fs.writeFileSync(log, "");
    const workers = Array.from({ length: 6 }, () => execa(process.execPath, ["--import", "tsx", HOLDER, target, log, "20", "2"], { cwd: ROOT, reject: false, env: { NATFARM_LOCK_DIR: dir } }));
    let removed = 0;
    let passes = 0;
    const done = Promise.all(workers);
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      removed += (await pruneStaleTargetFiles({ dir, minAgeMs: 0 })).removed.length;
      passes++;
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const w of await done) expect(w.exitCode, w.stderr).toBe(0);
    const holds = holdsOf(log);
    expect(holds).toHaveLength(6 * 20);
    expect(overlaps(holds, process.hrtime.bigint())).toEqual([]);
    // The passes did remove the file between holds (the race was run, not avoided).
    expect(passes).toBeGreaterThan(5);
    expect(removed).toBeGreaterThan(0);
  });
});
