import { spawnSync } from "node:child_process";
import { until } from "../helpers/until.ts";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus } from "../../lib/cluster/status.ts";
import { labHoldConnections, type HoldHandle } from "../../lib/lab/cluster-client.ts";
import {
  clusterLabApply,
  clusterLabFail,
  clusterLabHeal,
  clusterLabStartConntrackd,
  clusterLabStatus,
  clusterLabStopConntrackd,
  clusterLabUp,
  type ClusterLabInfo,
} from "../../lib/lab/cluster.ts";
import { labDown, labStateDir, labSweepOrphans, labTraffic, uniqueLabName } from "../../lib/lab/index.ts";
import { privilegedArgv, runPrivileged } from "../../lib/privileged/run.ts";
import { cachedConnections, holdSynced as holdSyncedOn, keptAnswering } from "../helpers/cluster.ts";
import { labFarm } from "../helpers/farms.ts";

/**
 * The cluster's must-show cases (issue 12) on one two-node cluster lab:
 * real keepalived and conntrackd in the node namespaces, real TCP through
 * natfarm's rules in both kernels, the lab's servers. Every wait is bounded
 * and polls for the state it needs rather than sleeping a guessed time, so a
 * loaded machine makes it slower, not flaky.
 */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false });
const name = uniqueLabName("cl");
let lab: ClusterLabInfo;
const held: HoldHandle[] = [];

const WEB = labFarm("web", "198.51.100.250", 80, [1, 1], "nat");
const APP = labFarm("app", "198.51.100.251", 8080, [1, 1], "dnat");
const PROBE = labFarm("probe", "198.51.100.252", 443, [1, 1], "nat", "udp");
const CONNECTIONS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The status once `node` is the one master, its addresses up and its conntrackd steps done.
 * Its role is asked for too: keepalived adds the addresses before its notify script records
 * the new state, and until then the node's steps done are those of its backup transition.
 */
const masterIs = (node: string, timeoutMs = 30_000) =>
  until(`${node} master`, timeoutMs, async () => {
    const s = await clusterLabStatus({ name });
    const m = s.nodes.find((n) => n.name === node)!;
    return s.master === node && m.role === "master" && m.transitionDone && m.missing.length === 0 ? s : null;
  });

const cached = (node: number, cache: "internal" | "external", port: number) => cachedConnections(name, node, cache, port);

/** Established connections to `port` in a node's kernel: source port -> mark. */
async function kernelEntries(node: number, port: number): Promise<Map<number, number>> {
  const r = await runPrivileged("conntrack", ["-L", "-p", "tcp", "--dport", String(port)], { target: { kind: "netns", name: `${name}-n${node}` }, allowFailure: true });
  const out = new Map<number, number>();
  for (const l of r.stdout.split("\n")) {
    if (!l.includes("ESTABLISHED")) continue;
    out.set(Number(/sport=(\d+)/.exec(l)![1]), Number(/mark=(\d+)/.exec(l)?.[1] ?? 0));
  }
  return out;
}

const macOf = async (ns: string, dev: string) => (JSON.parse((await runPrivileged("ip", ["-n", ns, "-j", "link", "show", "dev", dev])).stdout) as { address: string }[])[0]!.address;
const neighMac = async (ns: string, ip: string) =>
  (JSON.parse((await runPrivileged("ip", ["-n", ns, "-j", "neigh", "show", ip])).stdout || "[]") as { lladdr?: string }[])[0]?.lladdr ?? null;

/** Holds `CONNECTIONS` connections and waits until the backup's conntrackd has every one of them. */
const holdSynced = (vip: string, port: number, backup: number) => holdSyncedOn({ name, vip, port, backups: [backup], connections: CONNECTIONS, held });

function killLeftoversSync(): void {
  // Last resort if the run dies: every process in the lab's namespaces, then the namespaces.
  const ip = (args: string[]) => spawnSync(privilegedArgv("ip", args)[0]!, privilegedArgv("ip", args).slice(1), { encoding: "utf8", timeout: 5000 });
  const list = JSON.parse(ip(["-j", "netns", "list"]).stdout.trim() || "[]") as { name: string }[];
  for (const { name: ns } of list.filter((n) => n.name.startsWith(`${name}-`))) {
    const pids = ip(["netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean);
    if (pids.length) spawnSync("kill", ["-KILL", ...pids]);
    ip(["netns", "del", ns]);
  }
  fs.rmSync(labStateDir(name), { recursive: true, force: true });
}

beforeAll(async () => {
  process.once("exit", killLeftoversSync);
  await labSweepOrphans();
  lab = await clusterLabUp({ name, nodes: 2, backends: 2, ownerPid: process.pid });
  const r = await clusterLabApply({ name, farms: [WEB, APP, PROBE] });
  expect(r.nodes.map((n) => n.changed)).toEqual([true, true]);
  await masterIs("n1");
}, 120_000);

afterAll(async () => {
  for (const h of held) h.kill();
  await labDown({ name });
  // keepalived, its VRRP child and conntrackd ran with this lab's files: none may outlive it.
  const left = spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(labStateDir(name)));
  expect(left).toEqual([]);
}, 60_000);

describe("cluster lab: VRRP failover with connection sync", () => {
  it("is up as built: n1 master holding both gateways and every VIP, n2 backup, the same rules with the same marks in both kernels", async () => {
    const s = await clusterLabStatus({ name });
    expect(s.severity).toBe("ok");
    expect(s.nodes.map((n) => [n.name, n.role, n.holds.length])).toEqual([
      ["n1", "master", 5],
      ["n2", "backup", 0],
    ]);
    const rules = await Promise.all(lab.nodes.map((n) => runPrivileged("iptables-save", ["-t", "mangle"], { target: { kind: "netns", name: n.ns } })));
    const marks = rules.map((r) => [...r.stdout.matchAll(/--set-xmark (0x[0-9a-f]+)/g)].map((m) => m[1]).sort());
    expect(marks[0]!.length).toBe(6);
    expect(marks[1]).toEqual(marks[0]);
  });

  it("pulling the master's links: the VIP answers from n2, 20 established NAT connections all keep answering (marks synced), new connections succeed", async () => {
    const { h } = await holdSynced(WEB.vip, 80, 2);
    const marksBefore = await kernelEntries(1, 80);
    await clusterLabFail({ name, node: 1 });
    const s = await masterIs("n2");
    expect(s.nodes[0]!.role).toBe("fault");
    const atFailover = await h.report();
    const after = await keptAnswering(h, atFailover);
    expect(after.conns.filter((c) => c.closed !== null).map((c) => `${c.id}: ${c.closed} ${c.error}`)).toEqual([]);
    // Each connection kept its backend (the client checks every answer) and its mark came over with it.
    const marksAfter = await kernelEntries(2, 80);
    for (const c of after.conns) {
      expect(marksAfter.get(c.localPort!), `connection from port ${c.localPort}`).toBe(marksBefore.get(c.localPort!));
      expect(marksAfter.get(c.localPort!)).toBeGreaterThan(0);
    }
    // The client now reaches the VIP at n2's address (the gratuitous ARP moved it).
    const n2mac = await macOf(`${name}-n2`, "cli0");
    await until("the client's ARP entry for the VIP at n2", 15_000, async () => (await neighMac(`${name}-client`, WEB.vip)) === n2mac);
    const fresh = await labTraffic({ name, vip: WEB.vip, port: 80, connections: 50 });
    expect(fresh.ok).toBe(50);
    expect(Object.keys(fresh.backends).sort()).toEqual(["b0", "b1"]);
    const udp = await labTraffic({ name, vip: PROBE.vip, port: 443, connections: 20, protocol: "udp" });
    expect(udp.ok).toBe(20);
  });

  it("the healed old master does not preempt: it stays backup, pulls the table (its conntrackd holds every connection) and no established connection is reset", async () => {
    const h = held[0]!;
    const before = await h.report();
    await clusterLabHeal({ name, node: 1 });
    const ports = before.conns.map((c) => c.localPort!);
    const seen: string[] = [];
    let synced = false;
    // VRRP would preempt within ~0.4 s of hearing the lower-priority master; watch far longer.
    const end = Date.now() + 6_000;
    while (Date.now() < end || !synced) {
      const s = await clusterLabStatus({ name });
      seen.push(`${s.master ?? s.masters.join("+")}/${s.nodes[0]!.role}`);
      expect(s.masters).toEqual(["n2"]);
      if (!synced && s.nodes[0]!.role === "backup") {
        const ext = await cached(1, "external", 80);
        synced = ports.every((p) => ext.has(p));
      }
      if (Date.now() > end + 20_000) throw new Error(`n1 never synced: ${seen.join(" ")}`);
      await sleep(200);
    }
    expect(seen.at(-1)).toBe("n2/backup");
    const after = await keptAnswering(h, before);
    expect(after.conns.filter((c) => c.closed !== null)).toEqual([]);
    const final = await h.stop();
    expect(final.conns.every((c) => c.closed === "client" && c.error === null)).toBe(true);
  });

  it("a DNAT farm: the backends' gateway moves with the master, 20 established connections (opened while n1 was down, so it has them from the resync) keep answering", async () => {
    const { h } = await holdSynced(APP.vip, 8080, 1);
    await clusterLabFail({ name, node: 2 });
    const s = await masterIs("n1");
    expect(s.nodes[0]!.holds).toContain(lab.backendGateway);
    const n1mac = await macOf(`${name}-n1`, "bk0");
    await until("the backends' ARP entry for their gateway at n1", 15_000, async () => (await neighMac(`${name}-b0`, lab.backendGateway)) === n1mac);
    const after = await keptAnswering(h, await h.report());
    expect(after.conns.filter((c) => c.closed !== null).map((c) => `${c.id}: ${c.closed} ${c.error}`)).toEqual([]);
    // DNAT: the backends saw the client itself.
    expect(new Set(after.conns.map((c) => c.peer))).toEqual(new Set([lab.clientIp]));
    const fresh = await labTraffic({ name, vip: APP.vip, port: 8080, connections: 30 });
    expect(fresh.ok).toBe(30);
    for (const b of Object.values(fresh.backends)) expect(Object.keys(b.peers)).toEqual([lab.clientIp]);
    await h.stop();
    await clusterLabHeal({ name, node: 2 });
    await until("n2 back as backup", 30_000, async () => (await clusterLabStatus({ name })).nodes[1]!.role === "backup");
  });

  it("with conntrackd turned off, the same failover loses the established connections (so the cases above can fail); new ones still succeed", async () => {
    await clusterLabStopConntrackd({ name, node: 1 });
    await clusterLabStopConntrackd({ name, node: 2 });
    const warned = await clusterLabStatus({ name });
    expect(warned.problems.filter((p) => p.code === "conntrackd-down").map((p) => p.nodes[0])).toEqual(["n1", "n2"]);
    // A short answer timeout: a lost connection shows as lost within seconds.
    const h = labHoldConnections({ name, vip: WEB.vip, port: 80, connections: CONNECTIONS, intervalMs: 200, timeoutMs: 4_000 });
    held.push(h);
    const ready = await h.ready;
    expect(ready.conns.filter((c) => c.closed === null).length).toBe(CONNECTIONS);
    await clusterLabFail({ name, node: 1 });
    await masterIs("n2");
    const r = await until("every connection ended", 30_000, async () => {
      const x = await h.report();
      return x.conns.every((c) => c.closed !== null) ? x : null;
    });
    expect(r.conns.filter((c) => c.closed === "client").length).toBe(0);
    expect(r.conns.length).toBe(CONNECTIONS);
    const fresh = await labTraffic({ name, vip: WEB.vip, port: 80, connections: 30 });
    expect(fresh.ok).toBe(30);

    await clusterLabHeal({ name, node: 1 });
    await clusterLabStartConntrackd({ name, node: 2 });
    await clusterLabStartConntrackd({ name, node: 1 });
    await until("the cluster healthy again", 30_000, async () => {
      const s = await clusterLabStatus({ name });
      return s.severity === "ok" && s.master === "n2";
    });
  });

  it("split brain: the sync link cut between two healthy nodes makes both master, and cluster status calls it critical (exit 1); mended, one master again", async () => {
    await clusterLabFail({ name, node: 1, links: "sync" });
    const s: ClusterStatus = await until("split brain seen", 15_000, async () => {
      const x = await clusterLabStatus({ name });
      return x.problems.some((p) => p.code === "split-brain") ? x : null;
    });
    expect(s.severity).toBe("critical");
    expect(s.masters).toEqual(["n1", "n2"]);
    expect(s.nodes.every((n) => Object.values(n.links).every((l) => l === "up"))).toBe(true);
    const cli = await natfarm("cluster", "status", "--name", name, "--json");
    expect(cli.exitCode).toBe(1);
    expect(JSON.parse(cli.stdout)).toMatchObject({ severity: "critical", masters: ["n1", "n2"] });
    expect(cli.stderr).toMatch(/critical: split brain/);
    const text = await natfarm("cluster", "status", "--name", name);
    expect(text.stdout).toMatch(/CRITICAL: split brain: n1 and n2 both act as master/);

    await clusterLabHeal({ name, node: 1 });
    const healed = await until("one master again", 15_000, async () => {
      const x = await clusterLabStatus({ name });
      return x.severity === "ok" ? x : null;
    });
    expect(healed.masters.length).toBe(1);
    const ok = await natfarm("cluster", "status", "--name", name, "--json");
    expect(ok.exitCode).toBe(0);
  });

  it("bad input at the CLI is refused and changes nothing: a fifth node, a node the lab has not, links that do not exist, settings that do not fit, an unknown state", async () => {
    const other = uniqueLabName("cl");
    const five = await natfarm("lab", "up", "--name", other, "--cluster", "5");
    expect(five.exitCode).not.toBe(0);
    expect(five.stderr).toMatch(/a cluster lab has 2 to 4 nodes, got 5/);
    expect((await runPrivileged("ip", ["netns", "list"])).stdout).not.toContain(`${other}-`);
    const node7 = await natfarm("lab", "fail", "--name", name, "--node", "7");
    expect(node7.exitCode).not.toBe(0);
    expect(node7.stderr).toMatch(/has nodes 1, 2, not 7/);
    const links = await natfarm("lab", "fail", "--name", name, "--node", "1", "--links", "cable");
    expect(links.exitCode).not.toBe(0);
    expect(links.stderr).toMatch(/links must be "all" or "sync"/);
    // The configurations natfarm writes, printed; settings that do not fit are bad input (exit 2), naming the field.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-cluster-"));
    const cfg = path.join(dir, "cluster.json");
    const farms = path.join(dir, "farms.json");
    fs.writeFileSync(cfg, JSON.stringify({ ...lab.config, backendGateway: undefined }));
    fs.writeFileSync(farms, JSON.stringify({ farms: [WEB] }));
    const ok = await natfarm("cluster", "render", "--config", cfg, "--node", "2", "-f", farms);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/198\.51\.100\.250\/32 dev cli0 label cli0:vip {4}# farm web/);
    fs.writeFileSync(farms, JSON.stringify({ farms: [WEB, APP] }));
    const dnat = await natfarm("cluster", "render", "--config", cfg, "--node", "2", "-f", farms);
    expect(dnat.exitCode).toBe(2);
    expect(dnat.stderr).toMatch(/backendGateway: DNAT farm app needs a floating backend gateway/);
    fs.writeFileSync(cfg, JSON.stringify({ ...lab.config, advertIntervalMs: 15 }));
    const advert = await natfarm("cluster", "render", "--config", cfg, "--node", "1");
    expect(advert.exitCode).toBe(2);
    expect(advert.stderr).toMatch(/advertIntervalMs: advertIntervalMs must be a multiple of 10/);
    const state = await natfarm("cluster", "notify", "--run-dir", lab.nodes[0]!.runDir, "primary");
    expect(state.exitCode).toBe(2);
    expect(state.stderr).toMatch(/state must be one of master, backup, fault, stop/);
    expect((await clusterLabStatus({ name })).severity).toBe("ok");
  });
});
