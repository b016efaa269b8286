import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKernel } from "../../lib/agent/client.ts";
import { driftReport } from "../../lib/applier/index.ts";
import { loadClusterNodes } from "../../lib/cluster/node-sync.ts";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import { runtimeFiles } from "../../lib/cluster/runtime.ts";
import { clusterLabFail, clusterLabHeal, clusterLabSetFarms, clusterLabStatus, clusterLabUp, nodeRunDir } from "../../lib/lab/cluster.ts";
import { labDown, labSweepOrphans, labTraffic, uniqueLabName } from "../../lib/lab/index.ts";
import { readLabState, startBackendServer, stopBackendServer } from "../../lib/lab/servers.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { clusterOverview, type ClusterView } from "../../lib/service/cluster.ts";
import { rowToInput, rowToResolved } from "../../lib/service/farm-rows.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { loadFarms } from "../../lib/service/store.ts";
import { startAgent } from "../helpers/agent.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * Two balancer nodes sharing one database (issue 12, item 2), on a cluster
 * lab: each node runs its own agent (serving its own namespace) and its own
 * health checker process, which in a cluster also keeps the node's kernel at
 * the shared desired state. A change made through one node's farm service
 * (what its console's server actions call) reaches the other node's kernel,
 * timed; each node records what it applied; and only the master's checker
 * changes a backend's state.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const name = uniqueLabName("cs");
const VIP = "198.51.100.250";
const nodeTarget = (id: number): Target => ({ kind: "netns", name: `${name}-n${id}` });
let dir: string;
let tdb: TestDatabase;
let db: PrismaClient;
const agents: { stop(): Promise<void> }[] = [];
const checkers = new Map<number, ResultPromise>();
/** Each checker's output so far (pino lines), read while it runs. */
const logs = new Map<number, string>();
const services = new Map<number, FarmService>();
const socket = (id: number) => path.join(dir, `agent-n${id}.sock`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${[...logs].map(([id, l]) => `--- checker n${id}:\n${l.slice(-3000)}`).join("\n")}`);
    await sleep(everyMs);
  }
}

/** The database URL for processes inside the lab's namespaces (tests/helpers/db.ts). */
let netnsUrl = "";

function startChecker(id: number): void {
  logs.set(id, "");
  const c = execa(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "health-checker.ts")], {
      cwd: ROOT,
      env: {
        // Inside the node's namespace: a PostgreSQL server is reached through its Unix socket.
        NATFARM_DATABASE_URL: netnsUrl,
        NATFARM_TARGET: `netns:${name}-n${id}`,
        NATFARM_AGENT_SOCKET: socket(id),
        NATFARM_CLUSTER: `lab:${name}`,
        NATFARM_CLUSTER_NODE: String(id),
      },
      reject: false,
      all: true,
    });
  c.all?.on("data", (chunk: Buffer) => logs.set(id, logs.get(id)! + chunk.toString()));
  checkers.set(id, c);
}

async function stopChecker(id: number): Promise<void> {
  const c = checkers.get(id);
  if (!c) return;
  checkers.delete(id);
  c.kill("SIGTERM");
  await c;
}

const desiredInputs = async () => (await loadFarms(db)).map(rowToInput);
/** Whether node `id`'s kernel holds exactly the database's farms (the planner would write nothing). */
const inStep = async (id: number) => (await driftReport(await desiredInputs(), { target: nodeTarget(id) })).inSync;
const revision = async () => (await db.farmRevision.findUniqueOrThrow({ where: { id: 1 } })).revision;

type Configured = Extract<ClusterView, { configured: true }>;
const overview = async () =>
  (await clusterOverview({
    setting: { kind: "lab", name },
    kernel: agentKernel(socket(1)),
    desired: async () => (await loadFarms(db)).map(rowToResolved),
    records: () => loadClusterNodes(db),
  })) as Configured;

/** Both nodes' records at the current revision and the desired version. */
const recordedCurrent = () =>
  until("both nodes recording the current revision", 15_000, async () => {
    const [rev, v] = await Promise.all([revision(), overview()]);
    return v.nodes.every((n) => n.record?.appliedRevision === rev && n.record.current === true) ? { rev, v } : null;
  });

beforeAll(async () => {
  await labSweepOrphans();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-cs-"));
  tdb = await createTestDatabase("clustersync");
  db = await openDatabase(tdb.url);
  await clusterLabUp({ name, nodes: 2, backends: 2, ownerPid: process.pid });
  await clusterLabSetFarms({ name, farms: [{ name: "web", vip: VIP, mode: "nat" }] });
  for (const id of [1, 2]) {
    agents.push(await startAgent({ socket: socket(id), target: nodeTarget(id), lab: name, logFile: path.join(dir, `agent-n${id}.log`), testHooks: false }));
    services.set(id, createFarmService({ db, target: nodeTarget(id), kernel: agentKernel(socket(id)) }));
  }
  const created = await services.get(1)!.createFarm({
    name: "web",
    vip: VIP,
    ports: "80",
    protocol: "tcp",
    mode: "nat",
    healthcheck: { type: "tcp", interval: 2, timeout: 1, failures: 2, passes: 2 },
    backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80 })),
  });
  expect(created, JSON.stringify(created)).toMatchObject({ ok: true });
  netnsUrl = await tdb.netnsUrl();
  for (const id of [1, 2]) startChecker(id);
}, 120_000);

afterAll(async () => {
  for (const id of [...checkers.keys()]) await stopChecker(id);
  for (const a of agents) await a.stop();
  await labDown({ name }).catch(() => {});
  await disconnectPrisma(tdb?.url);
  await tdb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.sequential("cluster nodes share one desired state", () => {
  it("at start each node's sync brings its kernel to the database's farms and records the revision and version it applied", async () => {
    // n2 was never applied to by anyone but its own sync loop (whose process, tsx compiling it, takes several seconds to start on a loaded machine).
    await until("n2's kernel holding the farm created on n1", 45_000, () => inStep(2));
    expect(await inStep(1)).toBe(true);
    const { rev, v } = await recordedCurrent();
    expect(rev).toBeGreaterThan(0);
    for (const n of v.nodes) {
      expect(n.record).toMatchObject({ appliedVersion: v.desired!.version, applyError: null, current: true });
      // The record and the kernel's read-back agree.
      expect(n.applied.version).toBe(v.desired!.version);
    }
    // Each record's role is keepalived's last announced state on that node: the live view's (n1 master, normally).
    expect(v.nodes.map((n) => n.record!.role)).toEqual(v.nodes.map((n) => n.role));
    expect(v.severity).toBe("ok");
  });

  it("a weight edited through node 1's service reaches node 2's kernel (timed), and both records move to the new revision", async () => {
    const svc = services.get(1)!;
    const samples: { toN1: number; toN2: number }[] = [];
    for (const weight of [3, 5, 2]) {
      const row = (await svc.getFarm("web"))!;
      const before = await revision();
      const t0 = performance.now();
      const r = await svc.updateBackend("web", row.backends[0]!.mark, { weight });
      const toN1 = performance.now() - t0;
      expect(r).toMatchObject({ ok: true });
      expect(await revision()).toBeGreaterThan(before);
      // Polled every 20 ms: the figure is the time until n2's kernel holds exactly the new set.
      await until(`weight ${weight} in n2's kernel`, 10_000, () => inStep(2), 20);
      samples.push({ toN1: Math.round(toN1), toN2: Math.round(performance.now() - t0) });
      expect((await db.backend.findUniqueOrThrow({ where: { mark: row.backends[0]!.mark } })).weight).toBe(weight);
    }
    console.log(`cluster sync: a weight edit through n1's service, in n1's kernel after ${samples.map((s) => s.toN1).join(", ")} ms and in n2's kernel after ${samples.map((s) => s.toN2).join(", ")} ms`);
    const { rev, v } = await recordedCurrent();
    expect(v.nodes.every((n) => n.record!.appliedRevision === rev && n.applied.version === v.desired!.version)).toBe(true);
    const rows = await db.clusterNode.findMany({ orderBy: { name: "asc" } });
    expect(rows.map((x) => x.name)).toEqual(["n1", "n2"]);
    for (const x of rows) expect(Date.now() - x.lastSeen.getTime()).toBeLessThan(5_000);
  });

  it("a farm created through node 2's service reaches node 1's kernel, and its removal through node 1 leaves node 2's", async () => {
    const made = await services.get(2)!.createFarm({ name: "dns", vip: VIP, ports: "53", protocol: "udp", mode: "nat", backends: [{ ip: "203.0.113.10", port: 53 }] });
    expect(made).toMatchObject({ ok: true });
    await until("farm dns in n1's kernel", 10_000, () => inStep(1), 20);
    const gone = await services.get(1)!.deleteFarm("dns");
    expect(gone).toMatchObject({ ok: true, outcome: "removed" });
    await until("farm dns gone from n2's kernel", 10_000, async () => {
      const d = await driftReport(await desiredInputs(), { target: nodeTarget(2) });
      return d.inSync && d.stray.length === 0;
    }, 20);
    await recordedCurrent();
  });

  it("a backend seen down by the backup's checker keeps its state; the master's checker takes it down, and both kernels follow", async () => {
    const mark = (await services.get(1)!.getFarm("web"))!.backends[0]!.mark;
    const backend = () => db.backend.findUniqueOrThrow({ where: { mark } });
    // Only the backup probes: the master's checker (and its sync loop) is stopped.
    await stopChecker(1);
    // (The cluster lab's backends: lab*BackendServer would look for a single balancer's namespace.)
    await stopBackendServer(name, 0);
    try {
      // The backup's probes see it refused (recorded as the probe's detail)...
      await until("n2's probes seeing backend 0 refuse", 15_000, async () => /ECONNREFUSED/.test((await backend()).healthDetail ?? ""));
      // ...for well past the 2 failures x 2 s the check needs, and change nothing.
      await sleep(7_000);
      expect((await backend()).state).toBe("up");
      expect(await db.healthEvent.count()).toBe(0);
      expect(logs.get(2)).toMatch(/up -> down seen, left to the master \(n2 is backup: only the master changes a backend's state\)/);

      // The master's checker decides: down in the database, in n1's kernel by its apply, in n2's by its sync.
      startChecker(1);
      await until("backend 0 down, by the master", 20_000, async () => (await backend()).state === "down");
      // The event is written once the change was applied (after the state): waited for.
      const events = await until("the master's health event", 5_000, async () => {
        const e = await db.healthEvent.findMany();
        return e.length ? e : null;
      });
      expect(events).toEqual([expect.objectContaining({ farm: "web", mark, from: "up", to: "down" })]);
      await until("both kernels without backend 0", 10_000, async () => (await inStep(1)) && (await inStep(2)));
    } finally {
      await startBackendServer(name, 0, (await readLabState(name))!.ports);
    }
    await until("backend 0 back up", 20_000, async () => (await backend()).state === "up");
    await until("both kernels with backend 0 again", 10_000, async () => (await inStep(1)) && (await inStep(2)));
    await recordedCurrent();
  }, 90_000);

  it("`natfarm cluster status` shows each node's own record beside its live view; a node whose checker stopped reporting is shown stale", async () => {
    const BIN = path.join(ROOT, "bin", "natfarm.mjs");
    const env = { NATFARM_DATABASE_URL: tdb.url, NATFARM_AGENT_SOCKET: socket(1) };
    const status = async (...extra: string[]) => execa(process.execPath, [BIN, "cluster", "status", "--name", name, ...extra], { env, reject: false });
    const json = async () => {
      const r = await status("--json");
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Configured;
    };
    const rev = await revision();
    // Settled first: on a loaded machine a starved keepalived can flap the roles, and a notify run records its state a moment after the transition.
    const v = await until("one master, every transition recorded, both records at the current revision", 20_000, async () => {
      const x = await json();
      return x.master && x.nodes.every((n) => n.transitionDone && n.record?.role === n.role && n.record.appliedRevision === rev) ? x : null;
    }, 500);
    expect(v.recordsRead).toBe(true);
    // The recorded role is the one keepalived last announced on that node: the live view's.
    expect(v.nodes.map((n) => n.record?.role)).toEqual(v.nodes.map((n) => n.role));
    expect(v.nodes.map((n) => n.role).sort()).toEqual(["backup", "master"]);
    for (const n of v.nodes) expect(n.record).toMatchObject({ appliedRevision: rev, appliedVersion: v.desired!.version, current: true, stale: false, applyError: null });
    // conntrackd's counters come from the live view, the record from the database.
    expect(v.nodes.every((n) => n.conntrackd.running && n.conntrackd.stats !== null)).toBe(true);
    const text = await status();
    expect(text.stdout).toMatch(/recorded: backup, revision \d+, version [0-9a-f]+ \(current\) at \S+, seen \S+$/m);
    expect(text.stdout).not.toMatch(/STALE/);

    await stopChecker(2);
    try {
      const stale = await until("n2 shown stale", 25_000, async () => {
        const s = await json();
        return s.nodes[1]!.record?.stale ? s : null;
      }, 1000);
      expect(stale.nodes[0]!.record!.stale).toBe(false);
      expect(stale.problems).toContainEqual(expect.objectContaining({ severity: "warning", code: "record-stale", nodes: ["n2"] }));
      expect((await status()).stdout).toMatch(/STALE \(\d+ s ago\)/);
    } finally {
      startChecker(2);
    }
    await recordedCurrent();
  });

  it("a farm with a new VIP made through node 1's service floats on both nodes' keepalived; node 1 failed, it answers from node 2; re-addressed and removed through node 2, both follow", async () => {
    const NEW_VIP = "198.51.100.240";
    const MOVED_VIP = "198.51.100.241";
    const config = (id: number) => fs.readFileSync(runtimeFiles(nodeRunDir(name, id)).keepalivedConfig, "utf8");
    const holds = async (node: string) => (await clusterLabStatus({ name })).nodes.find((n) => n.name === node)!.holds;
    const made = await services.get(1)!.createFarm({ name: "fresh", vip: NEW_VIP, ports: "80", protocol: "tcp", mode: "nat", backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80 })) });
    expect(made).toMatchObject({ ok: true });
    // Each node's own sync loop rewrote its own configuration (n2's was never touched by n1's console).
    await until("the new VIP in both nodes' keepalived configurations", 15_000, async () => [1, 2].every((id) => config(id).includes(NEW_VIP)));
    // n1 normally; a backup that took over on a starved machine otherwise (nopreempt keeps it).
    const m = await until("one master", 10_000, async () => Number((await clusterLabStatus({ name })).master?.slice(1)) || null);
    const other = 3 - m;
    await until(`n${m} (master) holding the new VIP`, 10_000, async () => (await holds(`n${m}`)).includes(NEW_VIP));
    expect((await labTraffic({ name, vip: NEW_VIP, port: 80, connections: 10 })).ok).toBe(10);
    await until("n2's kernel in step", 10_000, () => inStep(2));

    await clusterLabFail({ name, node: m });
    try {
      await until(`n${other} master, holding the new VIP`, 15_000, async () => {
        const s = await clusterLabStatus({ name });
        return s.master === `n${other}` && s.nodes[other - 1]!.holds.includes(NEW_VIP);
      });
      // The client's ARP entry moves with n2's gratuitous ARP: new connections succeed once it has.
      const fresh = await until(`the new VIP answering from n${other}`, 15_000, async () => {
        const t = await labTraffic({ name, vip: NEW_VIP, port: 80, connections: 10, timeoutMs: 1000 });
        return t.ok === 10 ? t : null;
      });
      expect(Object.keys(fresh.backends).sort()).toEqual(["b0", "b1"]);

      // Re-addressed through n2 (n1 is cut off from the clients but not from the database): both configurations follow, the master moves the address.
      expect(await services.get(other)!.updateFarm("fresh", { vip: MOVED_VIP })).toMatchObject({ ok: true });
      await until("the moved VIP in both configurations, the old one gone", 15_000, async () => [1, 2].every((id) => config(id).includes(MOVED_VIP) && !config(id).includes(NEW_VIP)));
      await until(`n${other} holding the moved VIP only`, 10_000, async () => {
        const h = await holds(`n${other}`);
        return h.includes(MOVED_VIP) && !h.includes(NEW_VIP);
      });
      expect((await labTraffic({ name, vip: MOVED_VIP, port: 80, connections: 10, timeoutMs: 2000 })).ok).toBe(10);
      expect(await services.get(other)!.deleteFarm("fresh")).toMatchObject({ ok: true });
      await until("the farm's VIP gone from both configurations", 15_000, async () => [1, 2].every((id) => !config(id).includes(MOVED_VIP)));
    } finally {
      await clusterLabHeal({ name, node: m });
    }
    await until(`n${m} back as backup`, 20_000, async () => (await clusterLabStatus({ name })).nodes[m - 1]!.role === "backup");
    await recordedCurrent();
  }, 120_000);
});
