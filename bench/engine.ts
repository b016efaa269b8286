/**
 * Rule-engine benchmark: full apply, one-farm change, table read and a whole
 * `natfarm apply` process on an unchanged file, at 10, 100, 1,000 and 5,000
 * farms of 4 backends, in a throwaway network namespace (never the host).
 *
 *   npx tsx bench/engine.ts [--sizes 10,100,1000,5000] [--repeat 5]
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { applyFarms, readTables } from "../lib/applier/index.ts";
import type { ResolvedFarm } from "../lib/farms/schema.ts";
import { toFileFarm } from "../lib/farms/file.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import { benchFarms, machine, median, ms } from "./common.ts";
import type { Target } from "../lib/privileged/target.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = arg("sizes", "10,100,1000,5000").split(",").map(Number);
const repeat = Number(arg("repeat", "5"));




async function main() {
  console.log(`machine: ${machine()}`);
  console.log("farms | rules  | full apply | one-farm change (median) | table read (median) | `natfarm apply` unchanged (median, whole process)");
  console.log("------|--------|------------|--------------------------|---------------------|------------------------------------------------");
  const dir = mkdtempSync(path.join(os.tmpdir(), "natfarm-bench-"));
  for (const n of sizes) {
    const ns = `bench${randomBytes(3).toString("hex")}`;
    await runPrivileged("ip", ["netns", "add", ns]);
    const target: Target = { kind: "netns", name: ns };
    try {
      const input = benchFarms(n);
      let t = performance.now();
      const full = await applyFarms(input, { target });
      const fullMs = performance.now() - t;
      const resolved: ResolvedFarm[] = full.farms;

      const changes: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const victim = resolved[(r * 7919) % n]!;
        const next = resolved.map((f) => (f === victim ? { ...f, backends: f.backends.map((b, k) => ({ ...b, weight: ((k * 13 + r * 7 + 3) % 100) + 1 })) } : f));
        t = performance.now();
        const res = await applyFarms(next, { target, only: [victim.name] });
        changes.push(performance.now() - t);
        if (res.mode !== "scoped" || !res.changed) throw new Error(`one-farm change was ${res.mode}, changed=${res.changed}`);
        resolved.splice(resolved.indexOf(victim), 1, ...next.filter((f) => f.name === victim.name));
      }

      const reads: number[] = [];
      let rules = 0;
      for (let r = 0; r < repeat; r++) {
        t = performance.now();
        const snap = await readTables(target);
        reads.push(performance.now() - t);
        rules = snap.tables.reduce((a, tb) => a + tb.chains.reduce((b, c) => b + c.rules.length, 0), 0);
      }

      const file = path.join(dir, `farms-${n}.json`);
      writeFileSync(file, JSON.stringify({ farms: resolved.map((f) => toFileFarm(f)) }));
      const cli: number[] = [];
      for (let r = 0; r < Math.min(repeat, 3); r++) {
        t = performance.now();
        const p = spawnSync(process.execPath, [path.join(import.meta.dirname, "..", "bin", "natfarm.mjs"), "apply", "-f", file, "--target", `netns:${ns}`], { encoding: "utf8" });
        cli.push(performance.now() - t);
        if (p.status !== 0 || !p.stdout.startsWith("unchanged")) throw new Error(`natfarm apply: ${p.stdout}${p.stderr}`);
      }
      console.log(`${String(n).padStart(5)} | ${String(rules).padStart(6)} | ${ms(fullMs).padStart(10)} | ${ms(median(changes)).padStart(24)} | ${ms(median(reads)).padStart(19)} | ${ms(median(cli)).padStart(10)}`);
    } finally {
      await runPrivileged("ip", ["netns", "del", ns], { allowFailure: true });
    }
  }
}

await main();
