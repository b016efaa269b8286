import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desiredFarmHashes, setVersion } from "../../lib/cluster/applied.ts";
import { clusterNodeSetting, createNodeSync, nodeRole, type NodeRole } from "../../lib/cluster/node-sync.ts";
import { writeNodeState } from "../../lib/cluster/runtime.ts";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import { HealthChecker, type CheckedFarm } from "../../lib/health/checker.ts";
import type { KernelPort } from "../../lib/kernel/index.ts";
import { rowToResolved } from "../../lib/service/farm-rows.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { loadFarms } from "../../lib/service/store.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The node's sync loop against a real database (SQLite; PostgreSQL, whose
 * triggers are its own, in vitest's postgresql project) and a kernel port that
 * records what it is asked to apply: the revision the triggers bump, which
 * writes bump it, what a pass applies, what it records; and the checker's
 * master-only rule.
 */
let tdb: TestDatabase;
let url: string;
let db: PrismaClient;
const calls: { farms: string[]; only?: string[] }[] = [];
let fail: Error | null = null;
const kernel = {
  via: "direct",
  async applyFarms(input: unknown, opts: { only?: string[] }) {
    if (fail) throw fail;
    calls.push({ farms: (input as { name: string }[]).map((f) => f.name), ...(opts.only ? { only: opts.only } : {}) });
    return { changed: true, stats: { rulesAdded: 0, rulesDeleted: 0 }, durationMs: 1 };
  },
} as unknown as KernelPort;
const target = { kind: "netns", name: "nowhere" } as const;
const revision = async () => (await db.farmRevision.findUniqueOrThrow({ where: { id: 1 } })).revision;
const farm = (name: string, vip: string) => ({ name, vip, ports: "80", protocol: "tcp" as const, mode: "nat" as const, backends: [{ ip: "203.0.113.10", port: 80 }, { ip: "203.0.113.11", port: 80 }] });

beforeAll(async () => {
  tdb = await createTestDatabase("nodesync");
  url = tdb.url;
  db = await openDatabase(url);
});
afterAll(async () => {
  await disconnectPrisma(url);
  await tdb?.drop();
});

describe("FarmRevision: bumped by the database on desired-state writes only", () => {
  it("a farm written, a weight changed, a farm deleted bump it; apply bookkeeping and probe details do not", async () => {
    const service = createFarmService({ db, target: null });
    const r0 = await revision();
    expect((await service.createFarm(farm("a", "198.51.100.10"))).ok).toBe(true);
    const r1 = await revision();
    expect(r1).toBeGreaterThan(r0);
    const mark = (await service.getFarm("a"))!.backends[0]!.mark;
    await db.farm.update({ where: { name: "a" }, data: { applyState: "applied", appliedAt: new Date() } });
    await db.backend.update({ where: { mark }, data: { healthDetail: "connected", healthAt: new Date() } });
    expect(await revision()).toBe(r1);
    expect((await service.updateBackend("a", mark, { weight: 4 })).ok).toBe(true);
    const r2 = await revision();
    expect(r2).toBeGreaterThan(r1);
    await db.farm.delete({ where: { name: "a" } });
    expect(await revision()).toBeGreaterThan(r2);
  });
});

describe("the node's sync loop", () => {
  let role: NodeRole = "backup";
  let sync: ReturnType<typeof createNodeSync>;
  beforeAll(() => {
    sync = createNodeSync({ db, kernel, target, node: { name: "n2", cluster: "lab-x" }, role: () => role, heartbeatMs: 0, retryMs: 0 });
  });

  it("its first pass applies the whole set and records revision, version and role", async () => {
    const service = createFarmService({ db, target: null });
    await service.createFarm(farm("web", "198.51.100.20"));
    await service.createFarm(farm("api", "198.51.100.21"));
    calls.length = 0;
    const o = await sync.step();
    expect(calls).toEqual([{ farms: ["api", "web"] }]);
    const version = setVersion(desiredFarmHashes((await loadFarms(db)).map(rowToResolved)));
    expect(o).toMatchObject({ revision: await revision(), applied: "*", version });
    expect(await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } })).toMatchObject({ cluster: "lab-x", role: "backup", appliedRevision: await revision(), appliedVersion: version, applyError: null });
  });

  it("nothing changed: nothing applied, only the heartbeat (and the role) written", async () => {
    calls.length = 0;
    role = "master";
    const before = (await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } })).lastSeen;
    await new Promise((r) => setTimeout(r, 5));
    expect(await sync.step()).toBeNull();
    expect(calls).toEqual([]);
    const row = await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } });
    expect(row.role).toBe("master");
    expect(row.lastSeen.getTime()).toBeGreaterThan(before.getTime());
  });

  it("a weight change applies that farm alone; a stopped farm and a deleted one are applied as what changed", async () => {
    const service = createFarmService({ db, target: null });
    const mark = (await service.getFarm("web"))!.backends[0]!.mark;
    await service.updateBackend("web", mark, { weight: 7 });
    calls.length = 0;
    // (Two backends: with one, every weight renders the same rules and nothing would be due.)
    expect(await sync.step()).toMatchObject({ applied: ["web"] });
    expect(calls).toEqual([{ farms: ["api", "web"], only: ["web"] }]);
    await service.setStatus("api", "stopped");
    await db.farm.delete({ where: { name: "web" } });
    calls.length = 0;
    expect(await sync.step()).toMatchObject({ applied: ["api", "web"] });
    expect(calls).toEqual([{ farms: ["api"], only: ["api", "web"] }]);
  });

  it("a failed apply is recorded with its error and the applied revision kept; the next pass applies it again", async () => {
    const service = createFarmService({ db, target: null });
    const kept = (await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } })).appliedRevision;
    await service.setStatus("api", "up");
    fail = new Error("iptables-restore: line 3 failed");
    await expect(sync.step()).rejects.toThrow(/line 3 failed/);
    expect(await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } })).toMatchObject({ appliedRevision: kept, applyError: "iptables-restore: line 3 failed" });
    fail = null;
    calls.length = 0;
    expect(await sync.step()).toMatchObject({ applied: ["api"] });
    expect(await db.clusterNode.findUniqueOrThrow({ where: { name: "n2" } })).toMatchObject({ appliedRevision: await revision(), applyError: null });
  });
});

describe("the node's keepalived follows the farms' VIPs", () => {
  it("given the VIP set on the first pass and when a VIP comes, moves or goes, not on a weight edit; a refusal is recorded and retried", async () => {
    const given: string[][] = [];
    let refuse: Error | null = null;
    const keepalived = async (farms: { name: string; vip: string; mode: string }[]) => {
      if (refuse) throw refuse;
      given.push(farms.map((f) => `${f.name}=${f.vip}/${f.mode}`));
      return { changed: true, reloaded: true };
    };
    const sync = createNodeSync({ db, kernel, target, node: { name: "n4", cluster: "lab-x" }, role: () => "backup", heartbeatMs: 0, retryMs: 0, keepalived });
    const service = createFarmService({ db, target: null });
    for (const f of await loadFarms(db)) await db.farm.delete({ where: { name: f.name } });
    await service.createFarm(farm("ka", "198.51.100.30"));
    expect(await sync.step()).toMatchObject({ applied: "*", keepalived: true });
    expect(given).toEqual([["ka=198.51.100.30/nat"]]);
    const mark = (await service.getFarm("ka"))!.backends[0]!.mark;
    await service.updateBackend("ka", mark, { weight: 9 });
    expect(await sync.step()).toMatchObject({ applied: ["ka"] });
    expect(given).toHaveLength(1);
    await service.createFarm(farm("kb", "198.51.100.31"));
    await sync.step();
    expect(given.at(-1)).toEqual(["ka=198.51.100.30/nat", "kb=198.51.100.31/nat"]);
    refuse = new Error("farm kb: VIP 198.51.100.31 is node n1's client-side address");
    expect((await service.updateFarm("kb", { vip: "198.51.100.32" })).ok).toBe(true);
    await expect(sync.step()).rejects.toThrow(/client-side address/);
    expect((await db.clusterNode.findUniqueOrThrow({ where: { name: "n4" } })).applyError).toMatch(/^keepalived: farm kb/);
    refuse = null;
    // No revision moved since: the pass is due for keepalived alone.
    expect(await sync.step()).toMatchObject({ applied: [], keepalived: true });
    expect(given.at(-1)).toEqual(["ka=198.51.100.30/nat", "kb=198.51.100.32/nat"]);
    expect((await db.clusterNode.findUniqueOrThrow({ where: { name: "n4" } })).applyError).toBeNull();
    await db.farm.delete({ where: { name: "kb" } });
    await sync.step();
    expect(given.at(-1)).toEqual(["ka=198.51.100.30/nat"]);
  });
});

describe("the periodic whole-set apply", () => {
  it("once resyncMs has passed, a pass applies the whole set though no revision moved (another writer's late apply is put right)", async () => {
    let now = 1_000_000;
    const sync = createNodeSync({ db, kernel, target, node: { name: "n3", cluster: "lab-x" }, role: () => "backup", heartbeatMs: 60_000, resyncMs: 30_000 });
    calls.length = 0;
    await sync.step(now);
    now += 10_000;
    expect(await sync.step(now)).toBeNull();
    now += 25_000;
    expect(await sync.step(now)).toMatchObject({ applied: "*" });
    expect(calls.map((c) => c.only)).toEqual([undefined, undefined]);
  });
});

describe("which node this is, and its role", () => {
  it("NATFARM_CLUSTER_NODE with a cluster lab or a run directory; bad values refused by name", () => {
    expect(clusterNodeSetting({})).toBeNull();
    expect(clusterNodeSetting({ NATFARM_CLUSTER_NODE: "2", NATFARM_CLUSTER: "lab:abc" })).toEqual({ id: 2, runDir: "/run/natfarm-lab/abc/n2", lab: "abc" });
    expect(clusterNodeSetting({ NATFARM_CLUSTER_NODE: "1", NATFARM_CLUSTER_RUN_DIR: "/srv/node" })).toEqual({ id: 1, runDir: "/srv/node" });
    expect(() => clusterNodeSetting({ NATFARM_CLUSTER_NODE: "9", NATFARM_CLUSTER: "lab:abc" })).toThrow(/NATFARM_CLUSTER_NODE must be 1..8, got "9"/);
    expect(() => clusterNodeSetting({ NATFARM_CLUSTER_NODE: "x", NATFARM_CLUSTER: "lab:abc" })).toThrow(/NATFARM_CLUSTER_NODE must be a node id/);
    expect(() => clusterNodeSetting({ NATFARM_CLUSTER_NODE: "1" })).toThrow(/needs NATFARM_CLUSTER=lab:<name>/);
  });

  it("the role is keepalived's last announced state; none recorded is unknown", async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-nodesync-run-"));
    expect(nodeRole(runDir)).toBe("unknown");
    await writeNodeState(runDir, { state: "backup", at: new Date().toISOString(), steps: [], stepsDone: true });
    expect(nodeRole(runDir)).toBe("backup");
    await writeNodeState(runDir, { state: "stop", at: new Date().toISOString(), steps: [], stepsDone: true });
    expect(nodeRole(runDir)).toBe("stopped");
    fs.rmSync(runDir, { recursive: true, force: true });
  });
});

describe("the checker in a cluster: only the master changes a backend's state", () => {
  const farms: CheckedFarm[] = [{ name: "web", ports: "80", healthcheck: { type: "tcp", interval: 1, timeout: 1, failures: 2, passes: 2 }, backends: [{ mark: 0x200, ip: "203.0.113.10", port: 80, state: "up" }] }];
  it("a backup defers the change it sees (nothing set) and tries again; as master it sets it", async () => {
    let now = 0;
    let master = false;
    const set: string[] = [];
    const deferred: string[] = [];
    const checker = new HealthChecker({
      loadFarms: async () => farms,
      setState: async (c) => void set.push(`${c.farm} ${c.mark} ${c.to}`),
      probe: async () => ({ ok: false, detail: "ECONNREFUSED", ms: 1 }),
      now: () => now,
      mayChangeState: () => (master ? null : "n2 is backup"),
      onDeferred: (c, why) => deferred.push(`${c.to}: ${why}`),
    });
    for (let i = 0; i < 4; i++, now += 1000) await checker.tick();
    expect(set).toEqual([]);
    expect(deferred).toEqual(["down: n2 is backup", "down: n2 is backup"]);
    master = true;
    for (let i = 0; i < 2; i++, now += 1000) await checker.tick();
    expect(set).toEqual(["web 512 down"]);
  });
});
