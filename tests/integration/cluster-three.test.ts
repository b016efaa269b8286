import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKernel } from "../../lib/agent/client.ts";
import { driftReport } from "../../lib/applier/index.ts";
import { runtimeFiles } from "../../lib/cluster/runtime.ts";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { HoldHandle } from "../../lib/lab/cluster-client.ts";
import { clusterLabFail, clusterLabHeal, clusterLabStatus, clusterLabUp, nodeRunDir } from "../../lib/lab/cluster.ts";
import { labDown, labSweepOrphans, labTraffic, uniqueLabName } from "../../lib/lab/index.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { rowToInput } from "../../lib/service/farm-rows.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { loadFarms } from "../../lib/service/store.ts";
import { startAgent } from "../helpers/agent.ts";
import { holdSynced, keptAnswering } from "../helpers/cluster.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { until } from "../helpers/until.ts";

/**
 * More than two nodes (zevenet/zlb #46): a cluster lab of three balancers,
 * each with its agent and its health checker (which keeps its kernel and its
 * keepalived at the shared database's farms), conntrackd syncing over a
 * multicast group on the sync link. A farm made through one node reaches the
 * other two; failing the master moves the VIPs to the next priority (n2, not
 * n3) with every established NAT connection kept; a change made through the
 * new master reaches both others.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const name = uniqueLabName("c3");
const NODES = [1, 2, 3];
const VIP = "198.51.100.250";
const CONNECTIONS = 20;
const nodeTarget = (id: number): Target => ({ kind: "netns", name: `${name}-n${id}` });
let dir: string;
let tdb: TestDatabase;
let db: PrismaClient;
const agents: { stop(): Promise<void> }[] = [];
const checkers: ResultPromise[] = [];
const logs = new Map<number, string>();
const services = new Map<number, FarmService>();
const held: HoldHandle[] = [];
const socket = (id: number) => path.join(dir, `agent-n${id}.sock`);
/** The master now, and the node the failover test failed. */
let master = 1;
let failed = 0;

const inStep = async (id: number) => (await driftReport((await loadFarms(db)).map(rowToInput), { target: nodeTarget(id) })).inSync;
const allInStep = async () => (await Promise.all(NODES.map(inStep))).every(Boolean);
const keepalivedConfig = (id: number) => fs.readFileSync(runtimeFiles(nodeRunDir(name, id)).keepalivedConfig, "utf8");
const revision = async () => (await db.farmRevision.findUniqueOrThrow({ where: { id: 1 } })).revision;
const checkerLogs = () => [...logs].map(([id, l]) => `--- checker n${id}:\n${l.slice(-2000)}`).join("\n");

beforeAll(async () => {
  await labSweepOrphans();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-c3-"));
  tdb = await createTestDatabase("clusterthree");
  db = await openDatabase(tdb.url);
  await clusterLabUp({ name, nodes: 3, backends: 2, ownerPid: process.pid });
  for (const id of NODES) {
    agents.push(await startAgent({ socket: socket(id), target: nodeTarget(id), lab: name, logFile: path.join(dir, `agent-n${id}.log`), testHooks: false }));
    services.set(id, createFarmService({ db, target: nodeTarget(id), kernel: agentKernel(socket(id)) }));
  }
  // Inside each node's namespace: a PostgreSQL server is reached through its Unix socket.
  const dbUrl = await tdb.netnsUrl();
  for (const id of NODES) {
    logs.set(id, "");
    const c = execa(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "health-checker.ts")], {
      cwd: ROOT,
      env: { NATFARM_DATABASE_URL: dbUrl, NATFARM_TARGET: `netns:${name}-n${id}`, NATFARM_AGENT_SOCKET: socket(id), NATFARM_CLUSTER: `lab:${name}`, NATFARM_CLUSTER_NODE: String(id) },
      reject: false,
      all: true,
    });
    c.all?.on("data", (chunk: Buffer) => logs.set(id, logs.get(id)! + chunk.toString()));
    checkers.push(c);
  }
}, 180_000);

afterAll(async () => {
  for (const h of held) h.kill();
  for (const c of checkers) c.kill("SIGTERM");
  await Promise.all(checkers);
  for (const a of agents) await a.stop();
  await labDown({ name }).catch(() => {});
  await disconnectPrisma(tdb?.url);
  await tdb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.sequential("a cluster of three nodes", () => {
  it("is up with one master and two backups; a farm made through n1's service reaches all three kernels and keepalived configurations, and every node records it", async () => {
    // n1 wins the first election; on a machine loaded enough to starve keepalived past three 0.1 s adverts a backup may have taken over since (nopreempt keeps it): either way one master, two backups.
    const s = await until("one master and two backups", 20_000, async () => {
      const st = await clusterLabStatus({ name });
      return st.master && st.nodes.filter((n) => n.role === "backup").length === 2 ? st : null;
    });
    master = Number(s.master!.slice(1));
    // VRRP adverts go to both other nodes; conntrackd to the sync link's group.
    expect(keepalivedConfig(3)).toMatch(/unicast_peer \{\n\s+192\.0\.2\.1 .*\n\s+192\.0\.2\.2 .*\n\s+\}/);
    expect(fs.readFileSync(path.join(nodeRunDir(name, 3), "conntrackd.conf"), "utf8")).toMatch(/Multicast \{\n\s+IPv4_address 233\.252\.0\.51/);
    const made = await services.get(1)!.createFarm({ name: "web", vip: VIP, ports: "80", protocol: "tcp", mode: "nat", backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80 })) });
    expect(made, JSON.stringify(made)).toMatchObject({ ok: true });
    await until(`all three kernels holding the farm\n${checkerLogs()}`, 60_000, allInStep);
    await until("the VIP in all three keepalived configurations", 15_000, async () => NODES.every((id) => keepalivedConfig(id).includes(VIP)));
    await until("the master holding the VIP", 10_000, async () => (await clusterLabStatus({ name })).nodes[master - 1]!.holds.includes(VIP));
    const rev = await revision();
    await until("three records at the current revision", 15_000, async () => {
      const rows = await db.clusterNode.findMany({ orderBy: { name: "asc" } });
      return rows.length === 3 && rows.every((r) => r.appliedRevision === rev && r.applyError === null);
    });
    expect((await labTraffic({ name, vip: VIP, port: 80, connections: 10 })).ok).toBe(10);
  }, 120_000);

  it("failing the master moves the VIP to the next priority left (n2 when n1 fails), with 20 established NAT connections kept and new ones answered", async () => {
    const backups = NODES.filter((id) => id !== master);
    const { h } = await holdSynced({ name, vip: VIP, port: 80, backups, connections: CONNECTIONS, held });
    await clusterLabFail({ name, node: master });
    failed = master;
    // Priorities 200, 150, 100: the lowest id left has the highest.
    const next = backups[0]!;
    const s = await until(`n${next} the one master, its conntrackd steps done`, 30_000, async () => {
      const st = await clusterLabStatus({ name });
      const m = st.nodes[next - 1]!;
      // The role too: keepalived adds the VIP before its notify script records the new state, whose steps done are until then the backup transition's.
      return st.master === `n${next}` && m.role === "master" && m.transitionDone && m.holds.includes(VIP) ? st : null;
    });
    expect(s.nodes.map((n) => n.role)).toEqual(NODES.map((id) => (id === failed ? "fault" : id === next ? "master" : "backup")));
    master = next;
    const after = await keptAnswering(h, await h.report());
    expect(after.conns.filter((c) => c.closed !== null).map((c) => `${c.id}: ${c.closed} ${c.error}`)).toEqual([]);
    const fresh = await until("new connections answered through n2", 15_000, async () => {
      const t = await labTraffic({ name, vip: VIP, port: 80, connections: 20, timeoutMs: 1000 });
      return t.ok === 20 ? t : null;
    });
    expect(Object.keys(fresh.backends).sort()).toEqual(["b0", "b1"]);
  }, 120_000);

  it("a change made through the new master's service reaches the other backup's kernel and the failed node's (cut off from the clients, not from the database)", async () => {
    const svc = services.get(master)!;
    const mark = (await svc.getFarm("web"))!.backends[0]!.mark;
    expect(await svc.updateBackend("web", mark, { weight: 4 })).toMatchObject({ ok: true });
    await until(`all three kernels at the new weight\n${checkerLogs()}`, 20_000, allInStep);
    const rev = await revision();
    await until("three records at the new revision", 15_000, async () => (await db.clusterNode.findMany()).every((r) => r.appliedRevision === rev));
    await clusterLabHeal({ name, node: failed });
    // nopreempt: the healed node (n1: the highest priority) comes back as a backup.
    await until(`n${failed} back as backup`, 20_000, async () => (await clusterLabStatus({ name })).nodes[failed - 1]!.role === "backup");
    expect((await clusterLabStatus({ name })).master).toBe(`n${master}`);
  }, 90_000);
});
