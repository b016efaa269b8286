import { spawn } from "node:child_process";
import fs, { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { holdsOf, overlaps } from "../helpers/lock-holds.ts";
import { createNetns, deleteAllNetns } from "../helpers/netns.ts";

/**
 * One writer per target, across processes: holds of the lock never overlap,
 * a holder killed with -9 lets the others on, and many `natfarm apply` runs
 * with different files end in exactly one of the files, none failing.
 */
const ROOT = path.join(import.meta.dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "natfarm.mjs");
const HOLDER = path.join(ROOT, "tests", "fixtures", "lock-holder.ts");
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-concurrency-"));
afterAll(async () => {
  await deleteAllNetns();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the target lock", () => {
  it("admits one holder at a time across 8 processes, and a holder killed with -9 releases it", async () => {
    const { name } = await createNetns("lck");
    const log = path.join(dir, "holds.log");
    writeFileSync(log, "");
    const run = (rounds: number, holdMs: number) => execa(process.execPath, ["--import", "tsx", HOLDER, `netns:${name}`, log, String(rounds), String(holdMs)], { cwd: ROOT, reject: false });
    // One victim holds long; it is killed while holding, the 8 others queue behind it and go on.
    const victim = run(1, 60_000);
    await expect.poll(() => fs.readFileSync(log, "utf8"), { timeout: 20_000, interval: 50 }).toMatch(/enter/);
    const workers = Array.from({ length: 8 }, () => run(15, 3));
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = process.hrtime.bigint();
    victim.kill("SIGKILL");
    const results = await Promise.all(workers);
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const holds = holdsOf(log);
    expect(holds.filter((h) => h.leave !== null)).toHaveLength(8 * 15);
    const dead = holds.filter((h) => h.leave === null);
    expect(dead).toHaveLength(1);
    // The dead holder's interval runs until it was killed: nobody entered before that.
    expect(overlaps(holds.map((h) => (h.leave === null ? { ...h, leave: killedAt } : h)), killedAt)).toEqual([]);
    expect(holds.filter((h) => h.leave !== null).every((h) => h.enter > dead[0]!.enter)).toBe(true);
  });
});

function roundFarms(k: number): FarmInput[] {
  // Each file has farms of its own and a shared one with its own weights and backends, with explicit marks.
  const own = Array.from({ length: 3 + k }, (_, i): FarmInput => ({
    name: `r${k}f${i}`,
    vip: `198.51.100.${10 + k * 12 + i}`,
    ports: String(8000 + i),
    protocol: "tcp",
    mode: i % 2 ? "nat" : "dnat",
    backends: [1, 2].map((w, b) => ({ ip: `203.0.113.${10 + b}`, port: 80, weight: w + k, mark: `0x${(0x400 + k * 64 + i * 2 + b).toString(16)}` })),
  }));
  const shared: FarmInput = {
    name: "shared",
    vip: "198.51.100.200",
    ports: "443",
    protocol: "tcp",
    mode: k % 2 ? "nat" : "dnat",
    backends: Array.from({ length: 1 + (k % 4) }, (_, b) => ({ ip: `203.0.113.${20 + b + k}`, port: 443, weight: 1 + b, mark: `0x${(0x300 + k * 8 + b).toString(16)}` })),
  };
  return [...own, shared];
}

describe("concurrent natfarm apply", () => {
  it("8 processes with different files, 4 rounds: each round ends in exactly one file, and no run fails", async () => {
    const { name } = await createNetns("cnc");
    const target = `netns:${name}`;
    const files = Array.from({ length: 8 }, (_, k) => {
      const f = path.join(dir, `round-${k}.json`);
      writeFileSync(f, JSON.stringify({ farms: roundFarms(k) }));
      return f;
    });
    const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { cwd: ROOT, reject: false });
    for (let round = 0; round < 4; round++) {
      // Start order rotates so a different file tends to come last.
      const order = files.map((_, k) => files[(k + round * 3) % files.length]!);
      const runs = await Promise.all(order.map((f) => natfarm("apply", "-f", f, "--target", target)));
      for (const r of runs) expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
      const verdicts = await Promise.all(files.map((f) => natfarm("diff", "-f", f, "--target", target, "--json")));
      const inSync = verdicts.map((v) => (JSON.parse(v.stdout) as { inSync: boolean }).inSync);
      expect(inSync.filter(Boolean), `round ${round}: files in sync ${inSync}`).toHaveLength(1);
    }
  });
});
