import fs from "node:fs";
import { until } from "../helpers/until.ts";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKernel } from "../../lib/agent/client.ts";
import { applyFarms, validateFarms } from "../../lib/applier/apply.ts";
import { maintenanceFile } from "../../lib/cluster/maintenance.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import type { ResolvedFarm } from "../../lib/farms/schema.ts";
import type { KernelPort } from "../../lib/kernel/index.ts";
import type { HoldHandle } from "../../lib/lab/cluster-client.ts";
import { clusterLabApply, clusterLabFail, clusterLabHeal, clusterLabUp, nodeRunDir } from "../../lib/lab/cluster.ts";
import { labDown, labSweepOrphans, uniqueLabName } from "../../lib/lab/index.ts";
import { clusterOverview, formatClusterView, setNodeMaintenance, type ClusterSetting, type ClusterView } from "../../lib/service/cluster.ts";
import { startAgent } from "../helpers/agent.ts";
import { labFarm } from "../helpers/farms.ts";
import { holdSynced as holdSyncedOn, keptAnswering } from "../helpers/cluster.ts";

/**
 * The cluster as the console sees it, on one two-node cluster lab: the
 * status through the agent's typed op (as the unprivileged console reads
 * it), each node's kernel read back to a farm-set version and compared with
 * the desired set, maintenance handing the VIPs over with established
 * connections kept (and back), refusals that change nothing, and a split
 * brain judged critical by the same service function the page polls.
 * (The viewer's refused maintenance goes through the real console: tests/e2e/cluster.test.ts.)
 */
const name = uniqueLabName("cc");
const setting: ClusterSetting = { kind: "lab", name };
const WEB = labFarm("web", "198.51.100.250", 80, [1, 1], "nat");
const CONNECTIONS = 20;
let dir: string;
let agent: { stop(): Promise<void> };
let k: KernelPort;
let desired: ResolvedFarm[];
const held: HoldHandle[] = [];


type Configured = Extract<ClusterView, { configured: true }>;
const overview = async () => (await clusterOverview({ setting, kernel: k, desired: async () => desired })) as Configured;
const node = (v: Configured, n: string) => v.nodes.find((x) => x.name === n)!;
const settledMaster = (n: string) =>
  until(`${n} the one master`, 30_000, async () => {
    const v = await overview();
    const m = node(v, n);
    return v.master === n && m.role === "master" && m.transitionDone && m.missing.length === 0 && v.nodes.every((x) => x.role === "master" || x.transitionDone) ? v : null;
  });

/** Holds the connections and waits until the backup's conntrackd has every one of them. */
const holdSynced = (backup: number) => holdSyncedOn({ name, vip: "198.51.100.250", port: 80, backups: [backup], connections: CONNECTIONS, held });

beforeAll(async () => {
  await labSweepOrphans();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-cc-"));
  await clusterLabUp({ name, nodes: 2, backends: 2, ownerPid: process.pid });
  // The desired set as the database holds it: marks resolved once, the same on both nodes.
  desired = resolveMarks(validateFarms([WEB]));
  await clusterLabApply({ name, farms: desired });
  // The console's way in: an agent serving this cluster lab, over its socket.
  const socket = path.join(dir, "agent.sock");
  agent = await startAgent({ socket, target: { kind: "netns", name: `${name}-n1` }, lab: name, logFile: path.join(dir, "agent.log"), testHooks: false });
  k = agentKernel(socket);
}, 120_000);

afterAll(async () => {
  for (const h of held) h.kill();
  await agent?.stop();
  await labDown({ name });
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.sequential("the cluster in the console: status, maintenance, split brain", () => {
  it("the status through the agent's cluster.status: roles, addresses, links, conntrackd counters, and each node's kernel holding the desired farm set", async () => {
    const v = await settledMaster("n1");
    expect(v.severity).toBe("ok");
    expect(v.problems).toEqual([]);
    expect(node(v, "n1")).toMatchObject({ role: "master", vrrpState: "master", maintenance: false, links: { cli0: "up", bk0: "up", sync0: "up" } });
    expect(node(v, "n1").holds.sort()).toEqual(["198.51.100.1", "198.51.100.250", "203.0.113.1"]);
    expect(node(v, "n2")).toMatchObject({ role: "backup", holds: [], maintenance: false });
    for (const n of v.nodes) {
      expect(n.conntrackd.running).toBe(true);
      expect(n.conntrackd.stats?.counters).toHaveProperty(["cache internal: current active connections"]);
      // Read back from each kernel: the very version of the desired set.
      expect(n.applied.version).toBe(v.desired!.version);
      expect(n.applied.comparison).toEqual({ matches: true, missing: [], differs: [], extra: [] });
    }
    expect(formatClusterView(v)).toMatch(/n2\s+applied [0-9a-f]{12}, the desired set/);
  });

  it("a node whose kernel holds another farm set is named, with the farm that differs, and matches again once re-applied", async () => {
    // Same farm, same marks, another weight: only n2's kernel gets it.
    const other = desired.map((f) => ({ ...f, backends: f.backends.map((b, i) => (i === 0 ? { ...b, weight: 3 } : b)) }));
    await applyFarms(other, { target: { kind: "netns", name: `${name}-n2` } });
    const v = await overview();
    expect(node(v, "n1").applied.comparison?.matches).toBe(true);
    expect(node(v, "n2").applied.comparison).toEqual({ matches: false, missing: [], differs: ["web"], extra: [] });
    expect(node(v, "n2").applied.version).not.toBe(v.desired!.version);
    expect(v.severity).toBe("warning");
    expect(v.problems).toContainEqual(expect.objectContaining({ code: "config-differs", nodes: ["n2"], message: expect.stringMatching(/different rules for web/) }));
    await applyFarms(desired, { target: { kind: "netns", name: `${name}-n2` } });
    expect(node(await overview(), "n2").applied.comparison?.matches).toBe(true);
  });

  it("bad maintenance input and an agent that does not run the lab are refused, and nothing changes", async () => {
    await expect(k.cluster!.maintenance({ name, node: 7, on: true })).rejects.toThrow(/cluster lab-\S+ has nodes 1, 2, not 7/);
    await expect(k.cluster!.maintenance({ name, node: 1, on: "yes" as never })).rejects.toThrow(/on must be true/);
    await expect(k.cluster!.maintenance({ name: "other1", node: 1, on: true })).rejects.toThrow(/does not run lab "other1"/);
    const v = await overview();
    expect(v.master).toBe("n1");
    expect(v.nodes.map((n) => n.maintenance)).toEqual([false, false]);
    expect(fs.readFileSync(maintenanceFile(nodeRunDir(name, 1)), "utf8").trim()).toBe("0");
  });

  it("maintenance on the master hands the VIPs over to the backup with 20 established connections kept; back in service it stays backup; and the same the other way", async () => {
    const { h, ready } = await holdSynced(2);
    const r = await setNodeMaintenance({ setting, kernel: k }, { node: 1, mode: "on" });
    expect(r).toMatchObject({ node: "n1", on: true, changed: true, master: "n2" });
    const v = await overview();
    expect(node(v, "n2").holds).toContain("198.51.100.250");
    expect(node(v, "n1")).toMatchObject({ role: "fault", holds: [], maintenance: true });
    // Maintenance is the operator's choice: said so, not reported as a fault.
    expect(v.problems.find((p) => p.nodes.includes("n1"))).toMatchObject({ severity: "warning", code: "maintenance" });
    expect(v.severity).not.toBe("critical");
    const after = await keptAnswering(h, ready);
    expect(after.conns.filter((c) => c.closed !== null)).toEqual([]);
    // Each connection still answered by the backend it started on.
    expect(after.conns.map((c) => c.backend)).toEqual(ready.conns.map((c) => c.backend));

    // The only node that could take over is in maintenance: refused, nothing changed.
    await expect(setNodeMaintenance({ setting, kernel: k }, { node: 2, mode: "on" })).rejects.toMatchObject({ name: "ClusterRefusedError", message: expect.stringMatching(/n2 is master and no other node can take over \(n1 is in maintenance\)/) });
    expect((await overview()).master).toBe("n2");
    expect(fs.readFileSync(maintenanceFile(nodeRunDir(name, 2)), "utf8").trim()).toBe("0");

    const back = await setNodeMaintenance({ setting, kernel: k }, { node: 1, mode: "off" });
    expect(back).toMatchObject({ node: "n1", on: false, changed: true, master: "n2" });
    const v2 = await settledMaster("n2");
    expect(node(v2, "n1")).toMatchObject({ role: "backup", maintenance: false });
    h.kill();

    // And back: maintenance on n2 returns the VIPs to n1, its connections kept too.
    const second = await holdSynced(1);
    expect((await setNodeMaintenance({ setting, kernel: k }, { node: 2, mode: "on" })).master).toBe("n1");
    const kept = await keptAnswering(second.h, second.ready);
    expect(kept.conns.filter((c) => c.closed !== null)).toEqual([]);
    await setNodeMaintenance({ setting, kernel: k }, { node: 2, mode: "off" });
    const v3 = await settledMaster("n1");
    expect(v3.severity).toBe("ok");
    second.h.kill();
  }, 180_000);

  it("split brain (the sync link cut between two healthy nodes) is critical through the service function; mended, healthy again", async () => {
    await clusterLabFail({ name, node: 1, links: "sync" });
    try {
      const v = await until("split brain seen", 15_000, async () => {
        const x = await overview();
        return x.problems.some((p) => p.code === "split-brain") ? x : null;
      });
      expect(v.severity).toBe("critical");
      expect(v.master).toBeNull();
      expect(v.masters).toEqual(["n1", "n2"]);
      expect(v.problems.find((p) => p.code === "split-brain")).toMatchObject({ severity: "critical", message: expect.stringMatching(/split brain: n1 and n2 both act as master/) });
    } finally {
      await clusterLabHeal({ name, node: 1 });
    }
    await until("one master again", 20_000, async () => {
      const x = await overview();
      return x.severity === "ok" ? x : null;
    });
  }, 60_000);
});
