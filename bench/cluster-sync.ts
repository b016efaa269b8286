/**
 * Time for a change on one cluster node to reach the other node's kernel
 * (issue 12, "Speed": goal ≤ 1 s). A cluster lab, one shared SQLite database,
 * and per node what `npm start` runs there: an agent serving the node's
 * namespace and the health checker process, whose sync loop applies the
 * shared farms. A weight is edited through node 1's farm service (what its
 * console's server action calls) `--runs` times; each run measures, from the
 * call, when n1's kernel has it (the call's return) and when n2's kernel has
 * it (n2's rules for that farm polled every 10 ms with a scoped read). With
 * `--farms N` the database holds N other farms too; with `--nodes 3` (or 4)
 * every other node is timed. Then a farm with a new VIP is made through
 * node 1 `--runs` times: when each other node's keepalived configuration
 * carries it (its own sync loop renders it and reloads keepalived) and when
 * the master holds the address.
 *
 *   npx tsx bench/cluster-sync.ts [--runs 10] [--farms 0] [--nodes 2]
 */
import { execa, type ResultPromise } from "execa";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { agentKernel } from "../lib/agent/client.ts";
import { driftOfFarm } from "../lib/applier/index.ts";
import { disconnectPrisma, openDatabase } from "../lib/db/client.ts";
import { runtimeFiles } from "../lib/cluster/runtime.ts";
import { clusterLabStatus, clusterLabUp, nodeRunDir } from "../lib/lab/cluster.ts";
import { labDown, uniqueLabName } from "../lib/lab/index.ts";
import type { Target } from "../lib/privileged/target.ts";
import { importFarms } from "../lib/service/farm-io.ts";
import { rowToResolved } from "../lib/service/farm-rows.ts";
import { createFarmService } from "../lib/service/farm-service.ts";
import { validateFarms } from "../lib/applier/apply.ts";
import { startAgent } from "../tests/helpers/agent.ts";
import { benchFarms, machine, median } from "./common.ts";

const arg = (flag: string, dflt: number, max: number) => {
  const i = process.argv.indexOf(flag);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`${flag} must be 0..${max}`);
  return v;
};
const RUNS = Math.max(1, arg("--runs", 10, 100));
const FARMS = arg("--farms", 0, 5000);
const NODES = Math.max(2, arg("--nodes", 2, 4));
const IDS = Array.from({ length: NODES }, (_, i) => i + 1);
const OTHERS = IDS.slice(1);
const root = path.resolve(import.meta.dirname, "..");
const name = uniqueLabName("bs");
const target = (id: number): Target => ({ kind: "netns", name: `${name}-n${id}` });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-bench-sync-"));
const url = `file:${path.join(dir, "shared.db")}`;
const socket = (id: number) => path.join(dir, `agent-n${id}.sock`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | null | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

console.log(`machine: ${machine()}`);
const agents: { stop(): Promise<void> }[] = [];
const checkers: ResultPromise[] = [];
try {
  await clusterLabUp({ name, nodes: NODES, backends: 2, ownerPid: process.pid });
  const db = await openDatabase(url);
  // Background farms off the lab's own addresses (.1-.4 are the gateway, the client and the nodes; .250 is web's), a port each.
  const others = benchFarms(FARMS).map((f, i) => ({ ...f, vip: `198.51.100.${10 + (i % 200)}`, ports: String(20000 + i) }));
  const web = { name: "web", vip: "198.51.100.250", ports: "80", protocol: "tcp" as const, mode: "nat" as const, backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80, weight: 1 })) };
  await importFarms(db, validateFarms([...others, web]));
  for (const id of IDS) agents.push(await startAgent({ socket: socket(id), target: target(id), lab: name, logFile: path.join(dir, `agent-n${id}.log`), testHooks: false }));
  const service = createFarmService({ db, target: target(1), kernel: agentKernel(socket(1)) });
  for (const id of IDS) {
    checkers.push(
      execa(process.execPath, ["--import", "tsx", path.join(root, "scripts", "health-checker.ts")], {
        cwd: root,
        env: { NATFARM_DATABASE_URL: url, NATFARM_TARGET: `netns:${name}-n${id}`, NATFARM_AGENT_SOCKET: socket(id), NATFARM_CLUSTER: `lab:${name}`, NATFARM_CLUSTER_NODE: String(id) },
        reject: false,
        stdout: { file: path.join(dir, `checker-n${id}.log`) },
        stderr: "inherit",
      }),
    );
  }
  const inNode = async (id: number) => {
    const row = (await service.getFarm("web"))!;
    return (await driftOfFarm(target(id), rowToResolved(row))).inSync;
  };
  const started = performance.now();
  await until("every node's first sync", 180_000, 100, async () => (await db.clusterNode.count({ where: { appliedRevision: { not: null } } })) === NODES && (await Promise.all(OTHERS.map(inNode))).every(Boolean));
  console.log(`setup: ${NODES} nodes, ${FARMS + 1} farm(s) in ${url.slice(5)}, every node synced ${Math.round(performance.now() - started)} ms after their checkers started`);

  const toN1: number[] = [];
  const toOther = new Map<number, number[]>(OTHERS.map((id) => [id, []]));
  for (let run = 0; run < RUNS; run++) {
    const row = (await service.getFarm("web"))!;
    const weight = 2 + (run % 5);
    const t0 = performance.now();
    const r = await service.updateBackend("web", row.backends[0]!.mark, { weight: row.backends[0]!.weight === weight ? weight + 1 : weight });
    if (!r.ok) throw new Error(`the weight edit failed: ${r.message}`);
    toN1.push(performance.now() - t0);
    await Promise.all(
      OTHERS.map(async (id) => {
        await until(`run ${run + 1}: the weight in n${id}'s kernel`, 20_000, 10, () => inNode(id));
        toOther.get(id)!.push(performance.now() - t0);
      }),
    );
    // Apart, so each run starts from both nodes idle.
    await sleep(500);
  }
  const fmt = (xs: number[]) => `median ${Math.round(median(xs))} ms, worst ${Math.round(Math.max(...xs))} ms [${xs.map((x) => Math.round(x)).join(", ")}]`;
  console.log(`one weight edit through n1's service (${RUNS} runs, ${FARMS + 1} farm(s)):`);
  console.log(`  in n1's kernel (the service call):       ${fmt(toN1)}`);
  for (const [id, xs] of toOther) {
    console.log(`  in n${id}'s kernel (its sync loop):          ${fmt(xs)} (goal ≤ 1000 ms)`);
    console.log(`  n${id} after n1:                              ${fmt(xs.map((x, i) => x - toN1[i]!))}`);
  }
  // n2's own share: its sync pass (read, hash, apply through its agent, record), from its checker's log.
  const passes = fs
    .readFileSync(path.join(dir, "checker-n2.log"), "utf8")
    .split("\n")
    .filter((l) => l.includes("applied revision"))
    .map((l) => (JSON.parse(l) as { ms: number; applied: unknown }))
    .filter((o) => Array.isArray(o.applied) && o.applied.length)
    .map((o) => o.ms);
  if (passes.length) console.log(`  n2's sync passes that applied (${passes.length}): ${fmt(passes)}`);

  // A new VIP: each other node's keepalived is brought to it by its own sync loop.
  const config = (id: number) => fs.readFileSync(runtimeFiles(nodeRunDir(name, id)).keepalivedConfig, "utf8");
  const toConfig = new Map<number, number[]>(OTHERS.map((id) => [id, []]));
  const toHeld: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const vip = `198.51.100.${230 + (run % 10)}`;
    const t0 = performance.now();
    const r = await service.createFarm({ name: `vip${run}`, vip, ports: "80", protocol: "tcp", mode: "nat", backends: [{ ip: "203.0.113.10", port: 80 }] });
    if (!r.ok) throw new Error(`creating farm vip${run} failed: ${JSON.stringify(r)}`);
    await Promise.all([
      ...OTHERS.map(async (id) => {
        await until(`run ${run + 1}: ${vip} in n${id}'s keepalived configuration`, 20_000, 10, async () => config(id).includes(`${vip}/`));
        toConfig.get(id)!.push(performance.now() - t0);
      }),
      (async () => {
        await until(`run ${run + 1}: ${vip} held by the master`, 20_000, 10, async () => (await clusterLabStatus({ name })).nodes.some((n) => n.role === "master" && n.holds.includes(vip)));
        toHeld.push(performance.now() - t0);
      })(),
    ]);
    const gone = await service.deleteFarm(`vip${run}`);
    if (!gone.ok) throw new Error(`removing farm vip${run} failed`);
    await sleep(500);
  }
  console.log(`a farm with a new VIP through n1's service (${RUNS} runs):`);
  for (const [id, xs] of toConfig) console.log(`  in n${id}'s keepalived configuration (its sync loop): ${fmt(xs)}`);
  console.log(`  the address up on the master (n1's sync, keepalived reloaded): ${fmt(toHeld)}`);
} finally {
  for (const c of checkers) c.kill("SIGTERM");
  await Promise.all(checkers);
  for (const a of agents) await a.stop();
  await labDown({ name }).catch(() => {});
  await disconnectPrisma(url);
  fs.rmSync(dir, { recursive: true, force: true });
}
