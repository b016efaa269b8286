/**
 * natfarm side by side with nftlb (issue 10, "Speed"), in one run on one
 * machine: natfarm's iptables engine, natfarm's nftables engine and Debian's
 * nftlb, at N farms of 4 backends each, every one in a fresh lab of its own
 * (client, balancer, 4 backends: namespaces linked only to each other, the
 * documentation ranges only, always deleted), plus the kernel's floor: a bare
 * `iptables-restore` / `nft -f` of the same payload into an empty namespace.
 *
 *   npx tsx bench/peers.ts [--sizes 10,1000,5000,20000] [--repeat 7] [--connections 2000]
 *                          [--cap 600] [--nftlb-feed batch:<k>|post|config]
 *                          [--only natfarm-iptables,natfarm-nftables,natfarm-nftables-exec,nftlb,floors]
 *
 * nftlb is fed in POSTs of 100 farms by default: at 1,000 farms that was its
 * fastest feed here (README, "Speed: side by side with nftlb").
 *
 * Per size and contestant:
 *   - full load of all farms into the empty balancer: natfarm through a
 *     running agent (`natfarm agent`, the console's path: the whole set over
 *     its socket), nftlb through its daemon (how is --nftlb-feed);
 *   - one-farm change, backend 0's weight of the middle farm, through the
 *     running daemon: natfarm's agent socket op (a delta of that one farm, as
 *     the console sends), nftlb's REST API (POST of that farm's backend);
 *   - natfarm's unchanged re-apply (the whole set again: a full read and plan);
 *   - `--connections` new TCP connections from the lab's client to the first
 *     and to the last farm (the lab client's own wall time).
 * A step that would take longer than --cap seconds is not started: a size is
 * skipped for a contestant when its previous size's full load, grown with
 * the square of the farm count, predicts more than the cap (nftlb applies
 * each farm with its own nft transaction that re-reads the whole table, so
 * it grows at least that fast), and a step that runs past the cap is ended.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { agentKernel } from "../lib/agent/client.ts";
import { resolveMarks } from "../lib/farms/resolve.ts";
import { FarmListSchema, type FarmInput, type ResolvedFarm } from "../lib/farms/schema.ts";
import type { Engine } from "../lib/kernel/engine.ts";
import { labDown, labEnsureVip, labTraffic, labUp, uniqueLabName, type LabInfo } from "../lib/lab/index.ts";
import { renderFullPayload, renderRuleset } from "../lib/netfilter/render.ts";
import { renderFullPayload as renderNftFull, renderNft } from "../lib/nftables/render.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import type { Target } from "../lib/privileged/target.ts";
import { startAgent } from "../tests/helpers/agent.ts";
import { createNetns, deleteNetns } from "../tests/helpers/netns.ts";
import { labBenchFarms, machine, median, ms } from "./common.ts";
import { nftlbCall, nftlbDocument, nftlbVersion, nftlbWeightChange, startNftlb, waitForNftlb, type NftlbDaemon } from "./lib/nftlb.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = arg("sizes", "10,1000,5000,20000").split(",").map(Number);
const REPEAT = Number(arg("repeat", "7"));
const CONNECTIONS = Number(arg("connections", "2000"));
const CAP_MS = Number(arg("cap", "600")) * 1000;
const FEED = arg("nftlb-feed", "batch:100");
const batch = /^batch:(\d+)$/.exec(FEED);
/** natfarm-nftables-exec: the same engine with the agent's libnftables sessions off (NATFARM_NFT_SESSION=off), one `nft -f` process per change: the session's before and after in one run. */
const WHO = ["natfarm-iptables", "natfarm-nftables", "natfarm-nftables-exec", "nftlb", "floors"];
const ONLY = new Set(arg("only", WHO.join(",")).split(","));
if ([...ONLY].some((w) => !WHO.includes(w)) || sizes.some((n) => !Number.isInteger(n) || n < 1) || !(REPEAT >= 1) || !(CONNECTIONS >= 1) || !(CAP_MS > 0) || !(FEED === "post" || FEED === "config" || batch)) {
  console.error("usage: bench/peers.ts [--sizes 10,1000,5000,20000] [--repeat 7] [--connections 2000] [--cap SECONDS] [--nftlb-feed post|config|batch:<k>] [--only natfarm-iptables,natfarm-nftables,natfarm-nftables-exec,nftlb,floors]");
  process.exit(2);
}

/**
 * bench/common.ts's farm set (4 backends 1:2:3:4 on 203.0.113.10-13:8080, half
 * NAT and half DNAT, one tcp port each) on VIPs .10-.249, so that no farm
 * sits on the lab client's or balancer's own address: the lab's traffic
 * reaches the farms it measures and no other.
 */
const peerFarms = (n: number): FarmInput[] => labBenchFarms(n, 8080);

const weightOf = (round: number) => 1 + (round % 2) * 4; // 5, 1, 5, ...: every round a real change of backend 0 (1 at load)
const now = () => performance.now();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-peers-"));
const cleanups = new Set<() => Promise<void>>();

class OverCap extends Error {}
async function capped<T>(what: string, p: Promise<T>, capMs = CAP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const over = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new OverCap(`${what}: over the cap of ${capMs / 1000} s`)), capMs)));
  try {
    return await Promise.race([p, over]);
  } finally {
    clearTimeout(timer);
  }
}

interface Row {
  n: number;
  who: string;
  full?: string;
  change?: string;
  unchanged?: string;
  first?: string;
  last?: string;
  note?: string;
}
const COLS: [keyof Row, string][] = [
  ["n", "farms"],
  ["who", "who                         "],
  ["full", "full load"],
  ["change", `one-farm change (median of ${REPEAT})`],
  ["unchanged", "unchanged re-apply (median)"],
  ["first", `${CONNECTIONS} conns → first farm`],
  ["last", "→ last farm"],
  ["note", "notes"],
];
const printRow = (r: Partial<Record<keyof Row, string | number>>) =>
  console.log(COLS.map(([k, h]) => String(r[k] ?? "—").padEnd(k === "note" ? 0 : h.length)).join(" | ").trimEnd());

/** A lab of 4 backends serving the farms' backend port; always deleted (the nftlb daemon in it too). */
async function withLab<T>(fn: (lab: LabInfo) => Promise<T>): Promise<T> {
  const name = uniqueLabName("kpr");
  const down = () => labDown({ name }).catch((e) => console.error(`labDown ${name}: ${e instanceof Error ? e.message : e}`));
  cleanups.add(down);
  try {
    const lab = await labUp({ name, backends: 4, ports: [8080], ownerPid: process.pid });
    return await fn(lab);
  } finally {
    await down();
    cleanups.delete(down);
  }
}

/** New connections to one farm through the lab: the lab client's wall time; every connection must be answered, by all 4 backends between them. */
async function traffic(lab: LabInfo, farm: FarmInput): Promise<string> {
  await labEnsureVip({ name: lab.name, vip: farm.vip });
  // Not counted: the first packets of a lab resolve its neighbours and start its servers' accept paths.
  await labTraffic({ name: lab.name, vip: farm.vip, port: Number(farm.ports), connections: 20 });
  const r = await capped("traffic", labTraffic({ name: lab.name, vip: farm.vip, port: Number(farm.ports), connections: CONNECTIONS }));
  const answered = Object.values(r.backends).filter((b) => b.count > 0).length;
  if (r.failed || answered < 4) return `${ms(r.durationMs)} (${r.failed} failed ${JSON.stringify(r.errors)}, ${answered} backends answered)`;
  return ms(r.durationMs);
}

const lbTarget = (lab: LabInfo): Target => ({ kind: "netns", name: lab.lbNs });

async function natfarmRun(engine: Engine, n: number, farms: FarmInput[], row: Row, o: { session?: boolean } = {}): Promise<number> {
  // Marks as the console's database holds them: the agent gets farms it need not resolve.
  const resolved: ResolvedFarm[] = resolveMarks(FarmListSchema.parse(farms));
  return withLab(async (lab) => {
    const socket = path.join(dir, `agent-${lab.name}.sock`);
    const logFile = path.join(dir, `agent-${lab.name}.log`);
    const agent = await startAgent({ socket, target: lbTarget(lab), logFile, testHooks: false, env: { NATFARM_NFT_SESSION: o.session === false ? "off" : "" } });
    const stop = () => agent.stop();
    cleanups.add(stop);
    try {
      const k = agentKernel(socket);
      const target = lbTarget(lab);
      // A warm agent, as a console's is: a dry run of the same set first (through another client, so the load below still sends the whole set).
      await capped("warm-up dry run", agentKernel(socket).applyFarms(resolved, { target, engine, dryRun: true }));
      let t = now();
      const full = await capped("full load", k.applyFarms(resolved, { target, engine }));
      const fullMs = now() - t;
      if (!full.changed) throw new Error("the full load changed nothing");
      row.full = ms(fullMs);

      const victim = Math.floor(n / 2);
      let current = resolved;
      const changes: number[] = [];
      for (let round = 1; round <= REPEAT; round++) {
        current = current.map((f, i) => (i === victim ? { ...f, backends: f.backends.map((b, j) => (j === 0 ? { ...b, weight: weightOf(round) } : b)) } : f));
        t = now();
        const r = await capped("one-farm change", k.applyFarms(current, { target, engine, only: [`f${victim}`] }));
        changes.push(now() - t);
        if (r.mode !== "scoped" || !r.changed) throw new Error(`the one-farm change was ${r.mode}, changed=${r.changed}`);
      }
      row.change = ms(median(changes));

      const unchanged: number[] = [];
      for (let round = 0; round < Math.min(REPEAT, 5); round++) {
        t = now();
        const r = await capped("unchanged re-apply", k.applyFarms(current, { target, engine }));
        unchanged.push(now() - t);
        if (r.changed) throw new Error("the unchanged re-apply changed something");
      }
      row.unchanged = ms(median(unchanged));

      row.first = await traffic(lab, farms[0]!);
      row.last = await traffic(lab, farms[n - 1]!);
      if (engine === "nftables") row.note = `nft served by ${nftVia(logFile)}`;
      return fullMs;
    } finally {
      await stop();
      cleanups.delete(stop);
    }
  });
}

/** What served the agent's nft calls, as its log says (a libnftables session, or nft -f processes). */
function nftVia(logFile: string): string {
  const lines = fs.readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"nftables engine'));
  if (lines.some((l) => l.includes("a libnftables session serves"))) return "the agent's libnftables session";
  return lines.some((l) => l.includes("nft -f")) ? "one nft -f process per change" : "(not in the agent's log)";
}

const feedText = () =>
  FEED === "config"
    ? "nftlb -c <file of all farms> at start: time from the daemon's start until its REST port answers (it loads the file before it listens; polled every 20 ms)"
    : batch
      ? `POST /farms in batches of ${batch[1]} farms to the running daemon: the sum of curl's time_total`
      : "one POST /farms of all farms to the running daemon (curl --data-binary inside its namespace): curl's time_total";

/** nftlb's full load, as --nftlb-feed says; returns the daemon and the time. */
async function nftlbLoad(lab: LabInfo, farms: FarmInput[], key: string, logFile: string, started: (d: NftlbDaemon) => void): Promise<{ d: NftlbDaemon; fullMs: number }> {
  const docFile = path.join(dir, `nftlb-${lab.name}.json`);
  fs.writeFileSync(docFile, nftlbDocument(farms));
  if (FEED === "config") {
    const t = now();
    const d = startNftlb({ ns: lab.lbNs, key, logFile, config: docFile });
    started(d);
    if (!(await waitForNftlb(d, Date.now() + CAP_MS, 20))) {
      await d.stop();
      throw new OverCap(`full load: over the cap of ${CAP_MS / 1000} s`);
    }
    return { d, fullMs: now() - t };
  }
  const d = startNftlb({ ns: lab.lbNs, key, logFile });
  started(d);
  if (!(await waitForNftlb(d, Date.now() + 30_000))) throw new Error("nftlb did not answer within 30 s of its start");
  const parts: string[] = [];
  if (batch) {
    const k = Number(batch[1]);
    for (let i = 0; i < farms.length; i += k) {
      const f = path.join(dir, `nftlb-${lab.name}-${i}.json`);
      fs.writeFileSync(f, nftlbDocument(farms.slice(i, i + k)));
      parts.push(f);
    }
  } else parts.push(docFile);
  let fullMs = 0;
  for (const file of parts) {
    const left = CAP_MS - fullMs;
    const r = await nftlbCall(d, "POST", "/farms", { bodyFile: file, maxSeconds: Math.max(1, Math.ceil(left / 1000)) });
    if (r.status === 0) throw new OverCap(`full load: over the cap of ${CAP_MS / 1000} s (curl gave up)`);
    if (r.status !== 200) throw new Error(`nftlb answered the load with ${r.status}: ${r.body.slice(0, 300)}`);
    fullMs += r.ms;
  }
  return { d, fullMs };
}

async function nftlbRun(n: number, farms: FarmInput[], row: Row): Promise<{ fullMs: number; table: string }> {
  const key = randomBytes(12).toString("hex");
  return withLab(async (lab) => {
    const logFile = path.join(dir, `nftlb-${lab.name}.log`);
    let d: NftlbDaemon | undefined;
    const stop = async () => d?.stop();
    cleanups.add(stop);
    try {
      // Stopped on Ctrl-C also while it loads: a daemon left running would keep the lab's namespace alive.
      const loaded = await nftlbLoad(lab, farms, key, logFile, (started) => (d = started));
      d = loaded.d;
      const table = (await runPrivileged("nft", ["list", "table", "ip", "nftlb"], { target: lbTarget(lab) })).stdout;
      const chains = table.match(/^\s*chain filter-f\d+ \{/gm)?.length ?? 0;
      if (chains !== n) throw new Error(`nftlb's table holds ${chains} farm chains, not ${n} (log: ${fs.readFileSync(logFile, "utf8").slice(-500)})`);
      row.full = ms(loaded.fullMs);

      const victim = `f${Math.floor(n / 2)}`;
      const changes: number[] = [];
      for (let round = 1; round <= REPEAT; round++) {
        const file = path.join(dir, `nftlb-change-${round}.json`);
        fs.writeFileSync(file, nftlbWeightChange(victim, weightOf(round)));
        const r = await nftlbCall(d, "POST", "/farms", { bodyFile: file, maxSeconds: CAP_MS / 1000 });
        if (r.status === 0) throw new OverCap(`one-farm change: over the cap of ${CAP_MS / 1000} s (curl gave up)`);
        if (r.status !== 200) throw new Error(`nftlb answered the weight change with ${r.status}: ${r.body.slice(0, 300)}`);
        changes.push(r.ms);
      }
      // The change reached the kernel: backend 0's weight makes the numgen modulus (Σ weights).
      const sum = weightOf(REPEAT) + 2 + 3 + 4;
      const chain = (await runPrivileged("nft", ["list", "chain", "ip", "nftlb", `filter-${victim}`], { target: lbTarget(lab) })).stdout;
      if (!chain.includes(`numgen random mod ${sum} `)) throw new Error(`nftlb's chain filter-${victim} does not show the new weights (mod ${sum}): ${chain}`);
      row.change = ms(median(changes));
      row.unchanged = "not measured";

      row.first = await traffic(lab, farms[0]!);
      row.last = await traffic(lab, farms[n - 1]!);
      return { fullMs: loaded.fullMs, table };
    } finally {
      await stop();
      cleanups.delete(stop);
    }
  });
}

/** The kernel's floor: one bare load of a payload into a fresh, empty namespace (the process start included, as natfarm pays it). */
async function floor(program: "iptables-restore" | "nft", payload: string): Promise<number> {
  const ns = await createNetns("kpf");
  const del = () => deleteNetns(ns.name);
  cleanups.add(del);
  try {
    const args = program === "nft" ? ["-f", "-"] : ["--noflush", "-w", "10"];
    const t = now();
    await capped(`bare ${program}`, runPrivileged(program, args, { target: ns.target, input: payload, timeoutMs: CAP_MS }));
    return now() - t;
  } finally {
    await del();
    cleanups.delete(del);
  }
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
/** An error's first line; a zod error (a JSON list of issues) as its issues' messages. */
function message(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  try {
    const issues = JSON.parse(text) as { message?: string }[];
    if (Array.isArray(issues)) return [...new Set(issues.map((i) => i.message))].join("; ").slice(0, 300);
  } catch {
    /* not a list of issues */
  }
  return text.split("\n")[0]!.slice(0, 300);
}

async function main() {
  const nproc = spawnSync("nproc", [], { encoding: "utf8" }).stdout.trim();
  const nft = (await runPrivileged("nft", ["--version"])).stdout.trim();
  console.log(`machine: ${machine()}, nproc ${nproc}, ${nft}, nftlb ${nftlbVersion()}`);
  console.log(`load average at start: ${loadavg()}`);
  console.log(`nftlb fed by: ${feedText()}`);
  console.log(`cap per step: ${CAP_MS / 1000} s; one-farm change: backend 0's weight of farm f<n/2>, ${REPEAT} times; ${CONNECTIONS} new TCP connections per farm measured (lab client, concurrency 32)`);
  printRow(Object.fromEntries(COLS.map(([k, h]) => [k, h])));
  console.log(COLS.map(([, h]) => "-".repeat(h.length)).join("-|-"));

  const last = new Map<string, { n: number; ms: number; over: boolean }>();
  const skip = (who: string, n: number): string | null => {
    const p = last.get(who);
    if (!p) return null;
    if (p.over) return `skipped: at ${p.n} farms a step ran past the cap`;
    // Under a second the time is mostly fixed costs, which do not grow with n.
    const predicted = p.ms < 1000 ? 0 : p.ms * (n / p.n) ** 2;
    return predicted > CAP_MS ? `skipped: the full load of ${p.n} farms took ${(p.ms / 1000).toFixed(1)} s, which predicts ~${(predicted / 1000).toFixed(0)} s at ${n} (grown with n²), over the cap of ${CAP_MS / 1000} s` : null;
  };
  const contest = async (who: string, n: number, run: (row: Row) => Promise<number>) => {
    if (!ONLY.has(who)) return;
    const row: Row = { n, who };
    const why = skip(who, n);
    if (why) row.note = why;
    else {
      const t = now();
      try {
        last.set(who, { n, ms: await run(row), over: false });
      } catch (e) {
        row.note = `${e instanceof OverCap ? "" : "error: "}${message(e)}`;
        if (e instanceof OverCap) last.set(who, { n, ms: CAP_MS, over: true });
      }
      process.stderr.write(`[peers] ${who} at ${n} farms: ${((now() - t) / 1000).toFixed(1)} s\n`);
    }
    printRow(row);
  };

  for (const n of sizes) {
    const farms = peerFarms(n);
    let resolved: ResolvedFarm[] | null = null;
    let refused = "";
    try {
      resolved = resolveMarks(FarmListSchema.parse(farms));
    } catch (e) {
      refused = `natfarm refuses the set: ${message(e)}`;
    }
    for (const [who, engine, session] of [["natfarm-iptables", "iptables", true], ["natfarm-nftables", "nftables", true], ["natfarm-nftables-exec", "nftables", false]] as const) {
      if (refused) {
        if (ONLY.has(who)) printRow({ n, who, note: refused });
      } else await contest(who, n, (row) => natfarmRun(engine, n, farms, row, { session }));
    }
    let nftlbTable = "";
    await contest("nftlb", n, async (row) => {
      const r = await nftlbRun(n, farms, row);
      nftlbTable = r.table;
      return r.fullMs;
    });
    const floors: [string, "iptables-restore" | "nft", () => string, string][] = [];
    if (resolved && ONLY.has("floors")) {
      const set = resolved;
      floors.push(["floor: bare iptables-restore", "iptables-restore", () => renderFullPayload(renderRuleset(set)), "natfarm-iptables' payload, --noflush"]);
      floors.push(["floor: bare nft -f", "nft", () => renderNftFull(renderNft(set)), "natfarm-nftables' payload"]);
    }
    if (nftlbTable && ONLY.has("floors")) floors.push(["floor: bare nft -f (nftlb's)", "nft", () => nftlbTable, "nftlb's table as `nft list` prints it"]);
    for (const [who, program, payload, what] of floors) {
      const row: Row = { n, who, note: what };
      const why = skip(who, n);
      if (why) row.note = why;
      else {
        try {
          const t = await floor(program, payload());
          row.full = ms(t);
          last.set(who, { n, ms: t, over: false });
        } catch (e) {
          row.note = `${what}; ${e instanceof OverCap ? "" : "error: "}${message(e)}`;
          if (e instanceof OverCap) last.set(who, { n, ms: CAP_MS, over: true });
        }
      }
      printRow(row);
    }
  }
  console.log(`load average at end: ${loadavg()}`);
}

async function cleanup() {
  for (const c of [...cleanups].reverse()) await c().catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.error(`[peers] ${sig}: removing the labs and namespaces of this run`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await cleanup();
}
