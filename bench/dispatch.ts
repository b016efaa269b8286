/**
 * Dispatch benchmark, in fresh namespaces (never the host):
 *  1. new-connection time through the lab: 2,000 TCP connections from the lab
 *     client to the first and to the last farm, at 10, 1,000, 5,000 and 20,000
 *     farms of 4 backends each (median of `--repeat` runs per farm);
 *  2. a whole `natfarm apply` process of farms of 4 backends into an empty
 *     namespace against one bare `iptables-restore --noflush` of the same
 *     payload (`natfarm render`) into another empty namespace, and an
 *     unchanged re-apply against one bare `iptables-save` of mangle and nat
 *     (the re-apply as it runs, told by its stamp, and once more with the
 *     stamp removed: the whole way).
 *
 *     With --old-cli <bin/natfarm.mjs of a tree before the dispatch tree>, that
 *     CLI's apply, re-apply and bare restore of its own render run interleaved
 *     with these, so a loaded machine weighs on both alike.
 *
 *  3. one-farm changes through the applier (`--no-change` skips them): the
 *     first after a whole apply, warm ones, and one without marks.
 *
 *   npx tsx bench/dispatch.ts [--sizes 10,1000,5000,20000] [--repeat 3] [--connections 2000] [--no-connections] [--no-apply] [--no-change] [--old-cli PATH]
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs, { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { applyFarms } from "../lib/applier/index.ts";
import { forgetStamp, stampFile } from "../lib/applier/stamp.ts";
import type { FarmInput } from "../lib/farms/schema.ts";
import { labDown, labEnsureVip, labTraffic, labUp } from "../lib/lab/index.ts";
import type { ResolvedFarm } from "../lib/farms/schema.ts";
import { runPrivileged, type Runner } from "../lib/privileged/run.ts";
import type { Target } from "../lib/privileged/target.ts";
import { benchFarms, labBenchFarms, machine, median, ms, processCpuMs } from "./common.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = arg("sizes", "10,1000,5000,20000").split(",").map(Number);
const repeat = Number(arg("repeat", "3"));
const connections = Number(arg("connections", "2000"));
/** The CLI of a tree before the dispatch tree (e.g. a checkout of a1d72d9), measured in the same run. */
const oldBin = arg("old-cli", "") || null;
const skipConnections = process.argv.includes("--no-connections");
const skipApply = process.argv.includes("--no-apply");
const skipChange = process.argv.includes("--no-change");
const BIN = path.join(import.meta.dirname, "..", "bin", "natfarm.mjs");

/** n farms of the lab's 4 backends on port 80 (weights 1:2:3:4, half nat, half dnat), on 240 VIPs of the lab's client net, one port each. */
const labFarms = (n: number): FarmInput[] => labBenchFarms(n, 80);

async function connectionTimes(n: number): Promise<{ first: number; last: number }> {
  const name = `bd${randomBytes(3).toString("hex")}`;
  const lab = await labUp({ name, backends: 4, ports: [80], ownerPid: process.pid });
  try {
    const farms = labFarms(n);
    const target: Target = { kind: "netns", name: lab.lbNs };
    await applyFarms(farms, { target });
    const time = async (f: FarmInput) => {
      await labEnsureVip({ name, vip: f.vip });
      const runs: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const t = await labTraffic({ name, vip: f.vip, port: Number(f.ports), connections, concurrency: 64 });
        if (t.ok !== connections) throw new Error(`farm ${f.name}: ${t.failed} of ${connections} connections failed ${JSON.stringify(t.errors)}`);
        runs.push(t.durationMs);
      }
      return median(runs);
    };
    return { first: await time(farms[0]!), last: await time(farms[n - 1]!) };
  } finally {
    await labDown({ name });
  }
}

async function withNetns<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `bd${randomBytes(3).toString("hex")}`;
  await runPrivileged("ip", ["netns", "add", ns]);
  try {
    return await fn(ns);
  } finally {
    await runPrivileged("ip", ["netns", "del", ns], { allowFailure: true });
  }
}

/** CPU time (user + system, the process and its children) of every timed run, by label, beside the wall times. */
const cpu = new Map<string, number[]>();

/**
 * Wall time of a run; its CPU time goes to `cpu` under `label`. On a loaded
 * machine wall times swing by several times from run to run while CPU times
 * stay within a few percent, so both are reported.
 */
function timed(argv: string[], input?: string, label?: string): number {
  const t = performance.now();
  const p = spawnSync("/usr/bin/time", ["-f", "natfarm-bench-cpu %U %S", ...argv], { encoding: "utf8", input, maxBuffer: 1 << 30 });
  const elapsed = performance.now() - t;
  if (p.status !== 0) throw new Error(`${argv.join(" ")}: ${p.stderr}`);
  const m = /natfarm-bench-cpu (\d+\.\d+) (\d+\.\d+)/.exec(p.stderr);
  if (label && m) cpu.set(label, [...(cpu.get(label) ?? []), (Number(m[1]) + Number(m[2])) * 1000]);
  return elapsed;
}

/**
 * A whole apply and an unchanged re-apply by the CLI at `bin` into a fresh
 * namespace, with a bare save of the result; then the re-apply once more
 * without the stamp the first apply left (the whole way: checks, render,
 * compare).
 */
async function applyRun(bin: string, file: string, tag: string) {
  return withNetns(async (ns) => {
    const target: Target = { kind: "netns", name: ns };
    const apply = timed([process.execPath, bin, "apply", "-f", file, "--target", `netns:${ns}`], undefined, `${tag} apply`);
    const stamped = fs.existsSync(stampFile(target));
    const again = timed([process.execPath, bin, "apply", "-f", file, "--target", `netns:${ns}`], undefined, `${tag} re-apply`);
    const save = timed(["ip", "netns", "exec", ns, "sh", "-c", "iptables-save -t mangle >/dev/null && iptables-save -t nat >/dev/null"], undefined, `${tag} bare save`);
    forgetStamp(target);
    const whole = timed([process.execPath, bin, "apply", "-f", file, "--target", `netns:${ns}`], undefined, `${tag} re-apply without stamp`);
    forgetStamp(target);
    return { apply, again, save, whole, stamped };
  });
}

const bareRestore = (payload: string, label: string) => withNetns(async (ns) => timed(["ip", "netns", "exec", ns, "iptables-restore", "--noflush", "-w", "10"], payload, label));

function renderWith(bin: string, file: string): string {
  const render = spawnSync(process.execPath, [bin, "render", "-f", file], { encoding: "utf8", maxBuffer: 1 << 30 });
  if (render.status !== 0) throw new Error(render.stderr);
  return render.stdout;
}

/** What `natfarm apply` writes into an empty namespace: the render's chains as sectioned restores. */
async function applyPayload(file: string): Promise<string> {
  return withNetns(async (ns) => {
    const p = spawnSync(process.execPath, [BIN, "apply", "-f", file, "--target", `netns:${ns}`, "--dry-run"], { encoding: "utf8", maxBuffer: 1 << 30 });
    if (p.status !== 0) throw new Error(p.stderr);
    return p.stdout;
  });
}

async function applyVersusBare(n: number, dir: string) {
  const file = path.join(dir, `farms-${n}.json`);
  writeFileSync(file, JSON.stringify({ farms: benchFarms(n) }));
  const payload = renderWith(BIN, file);
  const sectioned = await applyPayload(file);
  const oldPayload = oldBin ? renderWith(oldBin, file) : null;
  const chains = (payload.match(/^:/gm) ?? []).length;
  const rules = (payload.match(/^-[AI] /gm) ?? []).length;
  const sections = (sectioned.match(/^COMMIT$/gm) ?? []).length;
  const runs = { apply: [] as number[], again: [] as number[], whole: [] as number[], save: [] as number[], bare: [] as number[], bareSectioned: [] as number[], oldApply: [] as number[], oldAgain: [] as number[], oldSave: [] as number[], oldBare: [] as number[] };
  let stamped = true;
  // Interleaved, so that a load that comes and goes weighs on every column alike.
  cpu.clear();
  for (let r = 0; r < repeat; r++) {
    const a = await applyRun(BIN, file, "natfarm");
    runs.apply.push(a.apply);
    runs.again.push(a.again);
    runs.whole.push(a.whole);
    runs.save.push(a.save);
    stamped &&= a.stamped;
    runs.bare.push(await bareRestore(payload, "bare restore (render)"));
    runs.bareSectioned.push(await bareRestore(sectioned, "bare restore (sectioned)"));
    if (oldBin && oldPayload) {
      const o = await applyRun(oldBin, file, "old");
      runs.oldApply.push(o.apply);
      runs.oldAgain.push(o.again);
      runs.oldSave.push(o.save);
      runs.oldBare.push(await bareRestore(oldPayload, "old bare restore"));
    }
  }
  console.log(`  ${n} farms, CPU time (user + system, medians): ${[...cpu].map(([k, v]) => `${k} ${ms(median(v))}`).join(", ")}`);
  const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.length ? median(v) : NaN])) as Record<keyof typeof runs, number>;
  return { chains, rules, sections, stamped, oldChains: oldPayload ? (oldPayload.match(/^:/gm) ?? []).length : null, ...m };
}

/**
 * One-farm changes (a weight) through the applier as the agent calls it, in
 * this process, after a whole apply of n farms into a fresh namespace: the
 * first change (cold: the first in the process after the whole apply), the
 * next `repeat` (warm), and one with farms that carry no marks (as a farm
 * file gives them). Wall and CPU (this process and the programs it ran),
 * and which programs ran: a whole-table read is an `iptables-save`.
 */
async function oneFarmChanges(n: number) {
  return withNetns(async (ns) => {
    const target: Target = { kind: "netns", name: ns };
    const full = await applyFarms(benchFarms(n), { target, timeoutMs: 900_000 });
    const resolved: ResolvedFarm[] = full.farms;
    const change = async (r: number, marked: boolean) => {
      const programs = new Map<string, number>();
      const runner: Runner = (program, args, o) => {
        programs.set(program, (programs.get(program) ?? 0) + 1);
        return runPrivileged(program, args, o);
      };
      const victim = resolved[(r * 7919) % n]!;
      const weight = (k: number) => ((k * 13 + r * 7 + 3) % 100) + 1;
      const next: unknown[] = marked
        ? resolved.map((f) => (f === victim ? { ...f, backends: f.backends.map((b, k) => ({ ...b, weight: weight(k) })) } : f))
        : benchFarms(n).map((f) => (f.name === victim.name ? { ...f, backends: (f.backends ?? []).map((b, k) => ({ ...b, weight: weight(k) })) } : f));
      const c0 = processCpuMs();
      const t0 = performance.now();
      const res = await applyFarms(next, { target, only: [victim.name], runner, timeoutMs: 900_000 });
      const wall = performance.now() - t0;
      const cpuMs = processCpuMs() - c0;
      if (res.mode !== "scoped" || !res.changed) throw new Error(`one-farm change was ${res.mode}, changed=${res.changed}`);
      if (marked) resolved.splice(resolved.indexOf(victim), 1, ...res.farms.filter((f) => f.name === victim.name));
      return { wall, cpu: cpuMs, programs: [...programs].map(([p, k]) => `${p}×${k}`).join(" ") };
    };
    const cold = await change(0, true);
    const warm = [];
    for (let r = 1; r <= repeat; r++) warm.push(await change(r, true));
    const unmarked = await change(repeat + 1, false);
    return { cold, warm: { wall: median(warm.map((w) => w.wall)), cpu: median(warm.map((w) => w.cpu)), programs: warm[0]!.programs }, unmarked };
  });
}

async function main() {
  console.log(`machine: ${machine()}`);
  console.log(`new connections: ${connections} TCP connections (64 at a time) from the lab client, median of ${repeat}; farms of 4 backends (weights 1:2:3:4, half nat, half dnat)`);
  console.log("farms | first farm | last farm | per connection (first / last)");
  console.log("------|------------|-----------|------------------------------");
  for (const n of skipConnections ? [] : sizes) {
    const { first, last } = await connectionTimes(n);
    console.log(`${String(n).padStart(5)} | ${ms(first).padStart(10)} | ${ms(last).padStart(9)} | ${((first / connections) * 1000).toFixed(0)} µs / ${((last / connections) * 1000).toFixed(0)} µs`);
  }
  if (!skipChange) {
    console.log(`\none-farm change (a weight; the applier in this process, as the agent runs it): the first after the whole apply, the median of the next ${repeat}, and one with farms that carry no marks; wall / CPU (process and its programs), programs run`);
    for (const n of sizes) {
      const r = await oneFarmChanges(n);
      const cell = (x: { wall: number; cpu: number; programs: string }) => `${ms(x.wall)} / ${ms(x.cpu)} (${x.programs})`;
      console.log(`${String(n).padStart(5)} | first: ${cell(r.cold)} | warm: ${cell(r.warm)} | no marks: ${cell(r.unmarked)}`);
    }
  }
  if (skipApply) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), "natfarm-bench-dispatch-"));
  console.log(
    `\napply: farms of 4 backends; a whole \`natfarm apply\` process into an empty namespace vs one bare iptables-restore --noflush of the render's payload (one section per table) and of the apply's own sectioned payload; unchanged re-apply vs one iptables-save of mangle and nat (medians of ${repeat}, interleaved)`,
  );
  if (oldBin) console.log(`before the dispatch tree (--old-cli ${oldBin}): its apply, re-apply and bare restore of its own render, in the same runs`);
  console.log("farms | chains | sections | natfarm apply | bare restore (render / sectioned) | ratio | unchanged re-apply | bare save | ratio | re-apply without stamp | ratio" + (oldBin ? " | old: chains, apply, re-apply, bare restore, bare save | apply / old bare" : ""));
  console.log("------|--------|----------|---------------|-----------------------------------|-------|--------------------|-----------|-------|------------------------|------" + (oldBin ? "|------------------------------------------------|-----------------" : ""));
  for (const n of sizes) {
    const r = await applyVersusBare(n, dir);
    const old = oldBin ? ` | ${r.oldChains}, ${ms(r.oldApply)}, ${ms(r.oldAgain)}, ${ms(r.oldBare)}, ${ms(r.oldSave)} | ${(r.apply / r.oldBare).toFixed(2)}` : "";
    console.log(
      `${String(n).padStart(5)} | ${String(r.chains).padStart(6)} | ${String(r.sections).padStart(8)} | ${ms(r.apply).padStart(13)} | ${`${ms(r.bare)} / ${ms(r.bareSectioned)}`.padStart(33)} | ${(r.apply / r.bare).toFixed(2).padStart(5)} | ${`${ms(r.again)}${r.stamped ? "" : " (no stamp)"}`.padStart(18)} | ${ms(r.save).padStart(9)} | ${(r.again / r.save).toFixed(2).padStart(5)} | ${ms(r.whole).padStart(22)} | ${(r.whole / r.save).toFixed(2)}${old}`,
    );
  }
}

await main();
