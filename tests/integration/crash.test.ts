import { spawn } from "node:child_process";
import fs, { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { applyFarms, driftReport } from "../../lib/applier/index.ts";
import { targetLockFile } from "../../lib/applier/lock.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { acquireFlock } from "../../lib/sys/flock.ts";
import { forwardingProblems, type MarkDefinition } from "../helpers/consistency.ts";
import { createNetns, deleteAllNetns, iptablesSave } from "../helpers/netns.ts";

/**
 * `natfarm apply` of 5,000 farms killed with -9 at instants spread over its
 * whole run — the CLI process alone (its iptables-restore lives on), or its
 * whole process group (as Ctrl-C or a supervisor would) — alternately from
 * one file to the other. After every kill the live rules forward
 * consistently (a CLI killed alone even leaves exactly the old or the new
 * file: its restore reads the payload from a file and finishes), and the next
 * apply ends in exactly the file.
 */
const ROOT = path.join(import.meta.dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "natfarm.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-crash-"));
afterAll(async () => {
  await deleteAllNetns();
  fs.rmSync(dir, { recursive: true, force: true });
});

const N = 5000;
const mark = (farm: number, backend: number) => 0x200 + farm * 4 + backend;

/** A: farms 0..4999. B: 250 gone, 250 new, every 3rd farm switches mode, every 5th moves a backend, weights change. */
function fileFarms(which: "A" | "B"): FarmInput[] {
  const ids = which === "A" ? Array.from({ length: N }, (_, i) => i) : Array.from({ length: N }, (_, i) => i + 250);
  return ids.map((i) => {
    const base = i % 2 ? "nat" : "dnat";
    const mode = which === "B" && i % 3 === 0 ? (base === "nat" ? "dnat" : "nat") : base;
    return {
      name: `f${i}`,
      vip: `198.51.100.${1 + (i % 250)}`,
      ports: String(1000 + Math.floor(i / 250)),
      protocol: "tcp",
      mode,
      backends: [0, 1, 2, 3].map((k) => ({
        ip: `203.0.113.${10 + k + (which === "B" && i % 5 === 0 && k === 0 ? 100 : 0)}`,
        port: 8080,
        weight: which === "A" ? 1 + k : 4 - k,
        mark: `0x${mark(i, k).toString(16)}`,
      })),
    };
  });
}

function definitions(files: FarmInput[][]): Map<number, MarkDefinition[]> {
  const out = new Map<number, MarkDefinition[]>();
  for (const farms of files) {
    for (const f of farms) {
      for (const b of f.backends ?? []) {
        const m = Number(b.mark);
        if (!out.has(m)) out.set(m, []);
        out.get(m)!.push({ dest: `${b.ip}:${b.port}`, snat: f.mode === "nat" });
      }
    }
  }
  return out;
}

async function waitForLock(target: Target) {
  // The lock is held until the killed apply's iptables-restore (if it lives on) has ended.
  const lock = await acquireFlock(targetLockFile(target), { timeoutMs: 120_000, what: "crash test: wait for the killed apply" });
  lock.release();
}

describe("an apply killed with -9 never leaves a half state", () => {
  it("12 kills over the whole run of a 5,000-farm apply: consistent after each, exact after the next apply", async () => {
    const { name, target } = await createNetns("crash");
    const farms = { A: fileFarms("A"), B: fileFarms("B") };
    const files = { A: path.join(dir, "a.json"), B: path.join(dir, "b.json") };
    writeFileSync(files.A, JSON.stringify({ farms: farms.A }));
    writeFileSync(files.B, JSON.stringify({ farms: farms.B }));
    const defs = definitions([farms.A, farms.B]);
    const journal = targetLockFile(target).replace(/\.lock$/, ".journal");

    await applyFarms(farms.A, { target });
    // How long a whole CLI apply from A to B takes here: the kills spread over that.
    const t0 = performance.now();
    const whole = await execa(process.execPath, [BIN, "apply", "-f", files.B, "--target", `netns:${name}`], { reject: false });
    const duration = performance.now() - t0;
    expect(whole.exitCode, whole.stderr).toBe(0);

    const outcomes: string[] = [];
    let current: "A" | "B" = "B";
    // A third of the kills spread over the start (reading, planning), the rest over the restore itself.
    const instants = [0.1, 0.25, 0.4, 0.5, ...Array.from({ length: 8 }, (_, i) => 0.55 + (0.5 * i) / 7)];
    for (let i = 0; i < instants.length; i++) {
      const next: "A" | "B" = current === "A" ? "B" : "A";
      const group = i % 2 === 1;
      const at = duration * instants[i]!;
      const child = spawn(process.execPath, [BIN, "apply", "-f", files[next], "--target", `netns:${name}`], { detached: true, stdio: "ignore" });
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      await new Promise((r) => setTimeout(r, at));
      try {
        process.kill(group ? -child.pid! : child.pid!, "SIGKILL");
      } catch {
        /* it had finished already */
      }
      const code = await exited;
      await waitForLock(target);
      const [mangle, nat] = await Promise.all([iptablesSave(target, "mangle"), iptablesSave(target, "nat")]);
      const problems = forwardingProblems(mangle, nat, defs);
      const journalLeft = fs.existsSync(journal);
      outcomes.push(`${Math.round(at)}ms ${group ? "group" : "cli"}: ${code === 0 ? "finished" : "killed"}${journalLeft ? ", journal left" : ""}, ${problems.length} problem(s)`);
      expect(problems.slice(0, 5), `kill ${i} at ${Math.round(at)} ms (${group ? "process group" : "CLI only"})`).toEqual([]);
      if (!group) {
        // The CLI alone died: its restore read the whole payload from a file and ran to the end, or never started.
        const [asNew, asOld] = await Promise.all([driftReport(farms[next], { target }), driftReport(farms[current], { target })]);
        expect(asNew.inSync || asOld.inSync, `kill ${i} (CLI only): the kernel holds the old or the new file`).toBe(true);
      }

      // The next apply takes over from whatever prefix is in force and ends in exactly the file.
      const done = await execa(process.execPath, [BIN, "apply", "-f", files[next], "--target", `netns:${name}`], { reject: false });
      expect(done.exitCode, done.stderr).toBe(0);
      if (journalLeft) expect(`${done.stdout}\n${done.stderr}`).toMatch(/interrupted/);
      expect(fs.existsSync(journal)).toBe(false);
      expect((await driftReport(farms[next], { target })).inSync).toBe(true);
      current = next;
    }
    console.log(`apply of ${N} farms A→B took ${Math.round(duration)} ms; kills:\n  ${outcomes.join("\n  ")}`);
  }, 600_000);
});
