import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ClusterConfigError, ClusterConfigSchema, parseClusterConfig, type ClusterConfigInput } from "../../lib/cluster/config.ts";
import { renderConntrackd } from "../../lib/cluster/conntrackd.ts";
import { floatingAddresses, renderKeepalived } from "../../lib/cluster/keepalived.ts";
import { clusterNotify } from "../../lib/cluster/notify.ts";
import { readNodeState, writeNodeRuntime, writeNodeState } from "../../lib/cluster/runtime.ts";
import { conntrackdSteps } from "../../lib/cluster/transitions.ts";
import type { RunOptions, RunResult } from "../../lib/privileged/run.ts";

/**
 * keepalived.conf and conntrackd.conf as natfarm renders them (golden files:
 * `NATFARM_UPDATE_GOLDEN=1` rewrites tests/golden/cluster-*, review the diff),
 * the settings schema's refusals, and the transitions keepalived's notify runs.
 */
const GOLDEN = path.join(import.meta.dirname, "..", "golden");
function golden(name: string, text: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.NATFARM_UPDATE_GOLDEN === "1") fs.writeFileSync(file, text);
  expect(text).toBe(fs.readFileSync(file, "utf8"));
}

/** Two balancers as an operator would set them up: eth0 towards clients, eth1 towards backends, eth2 a crossover cable. */
const TWO: ClusterConfigInput = {
  name: "edge",
  virtualRouterId: 42,
  advertIntervalMs: 100,
  interfaces: { client: "eth0", backend: "eth1", sync: "eth2" },
  clientGateway: "198.51.100.1/32",
  backendGateway: "203.0.113.1/32",
  nodes: [
    { id: 1, name: "lb1", priority: 200, syncAddress: "192.0.2.1", clientAddress: "198.51.100.3", backendAddress: "203.0.113.2" },
    { id: 2, name: "lb2", priority: 150, syncAddress: "192.0.2.2", clientAddress: "198.51.100.4", backendAddress: "203.0.113.3" },
  ],
};
const FARMS = [
  { name: "web", vip: "198.51.100.250", mode: "nat" as const },
  // Same VIP, another port: one address, named for both farms.
  { name: "web-tls", vip: "198.51.100.250", mode: "nat" as const },
  { name: "app", vip: "198.51.100.20", mode: "dnat" as const },
];
const NOTIFY = ["/usr/bin/node", "/opt/natfarm/bin/natfarm.mjs", "cluster", "notify", "--run-dir", "/run/natfarm/cluster"];

describe("keepalived.conf", () => {
  it("golden: both nodes of a two-node cluster", () => {
    const c = parseClusterConfig(TWO);
    golden("cluster-lb1.keepalived.conf", renderKeepalived(c, 1, FARMS, { notify: NOTIFY }));
    golden("cluster-lb2.keepalived.conf", renderKeepalived(c, 2, FARMS, { notify: NOTIFY }));
  });

  it("every node starts BACKUP with nopreempt (a node that comes back never takes over a running master), VRRPv3, 100 ms adverts to its peers only", () => {
    const c = parseClusterConfig(TWO);
    for (const id of [1, 2]) {
      const text = renderKeepalived(c, id, FARMS, { notify: NOTIFY });
      expect(text).toMatch(/^\s+state BACKUP$/m);
      expect(text).toMatch(/^\s+nopreempt$/m);
      expect(text).not.toMatch(/^\s+state MASTER/m);
      expect(text).toMatch(/^\s+vrrp_version 3$/m);
      expect(text).toMatch(/^\s+advert_int 0\.1$/m);
      expect(text).toMatch(new RegExp(`^\\s+unicast_src_ip 192\\.0\\.2\\.${id}$`, "m"));
      const peers = /unicast_peer \{\n([\s\S]*?)\n\s+\}/.exec(text)![1]!.trim().split("\n").map((l) => l.trim().split(/\s+/)[0]);
      expect(peers).toEqual([`192.0.2.${3 - id}`]);
      for (const state of ["master", "backup", "fault", "stop"]) expect(text).toContain(`notify_${state} "${NOTIFY.join(" ")} ${state}"`);
    }
  });

  it("the gateways float in the adverts, each farm VIP once (with the farms using it) outside them, labelled as a VIP", () => {
    const text = renderKeepalived(parseClusterConfig(TWO), 1, FARMS, { notify: NOTIFY });
    const block = (name: string) => new RegExp(`${name} \\{\\n([\\s\\S]*?)\\n\\s+\\}`).exec(text)![1]!.split("\n").map((l) => l.trim());
    expect(block("virtual_ipaddress")).toEqual(["198.51.100.1/32 dev eth0    # client gateway", "203.0.113.1/32 dev eth1    # backend gateway"]);
    expect(block("virtual_ipaddress_excluded")).toEqual([
      "198.51.100.20/32 dev eth0 label eth0:vip    # farm app",
      "198.51.100.250/32 dev eth0 label eth0:vip    # farm web, web-tls",
    ]);
  });

  it("refuses what cannot work, naming why, and renders nothing", () => {
    const c = parseClusterConfig(TWO);
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ClusterConfigError);
        return (e as Error).message;
      }
      throw new Error("not refused");
    };
    expect(refused(() => renderKeepalived(c, 1, [{ name: "x", vip: "198.51.100.3", mode: "nat" }], { notify: NOTIFY }))).toMatch(/farm x: VIP 198\.51\.100\.3 is node lb1's client-side address/);
    expect(refused(() => renderKeepalived(c, 1, [{ name: "x", vip: "198.51.100.1", mode: "nat" }], { notify: NOTIFY }))).toMatch(/VIP 198\.51\.100\.1 is client gateway/);
    const noGw = parseClusterConfig({ ...TWO, backendGateway: undefined });
    expect(refused(() => renderKeepalived(noGw, 1, FARMS, { notify: NOTIFY }))).toMatch(/DNAT farm app needs a floating backend gateway/);
    expect(() => renderKeepalived(noGw, 1, FARMS.filter((f) => f.mode === "nat"), { notify: NOTIFY })).not.toThrow();
    expect(refused(() => renderKeepalived(c, 1, FARMS, { notify: ["/usr/bin/node", "/opt/my natfarm/bin"] }))).toMatch(/notify command must be words without spaces/);
    expect(refused(() => renderKeepalived(c, 3, FARMS, { notify: NOTIFY }))).toMatch(/has no node 3/);
  });
});

describe("conntrackd.conf", () => {
  it("golden: FTFW over unicast UDP on the sync link for two nodes; a multicast group for three", () => {
    golden("cluster-lb1.conntrackd.conf", renderConntrackd(parseClusterConfig(TWO), 1, { runDir: "/run/natfarm/cluster" }));
    const three = parseClusterConfig({
      ...TWO,
      conntrackd: { multicastGroup: "239.255.38.1" },
      nodes: [...TWO.nodes, { id: 3, name: "lb3", priority: 100, syncAddress: "192.0.2.3" }],
    });
    golden("cluster-lb3.conntrackd.conf", renderConntrackd(three, 3, { runDir: "/run/natfarm/cluster" }));
  });

  it("its lock, socket and log are the node's own (two daemons on one machine never meet), and the VIPs are not ignored", () => {
    const text = renderConntrackd(parseClusterConfig(TWO), 2, { runDir: "/run/natfarm-lab/x/n2" });
    expect(text).toContain("LockFile /run/natfarm-lab/x/n2/conntrackd.lock");
    expect(text).toContain("Path /run/natfarm-lab/x/n2/conntrackd.ctl");
    expect(text).toContain("IPv4_Destination_Address 192.0.2.1");
    expect(text).toMatch(/Mode FTFW/);
    // Ignoring a VIP would drop exactly the connections the cluster exists for.
    expect(text).not.toContain("198.51.100.250");
    expect(() => renderConntrackd(parseClusterConfig(TWO), 1, { runDir: "relative/dir" })).toThrow(/absolute path/);
    expect(() => renderConntrackd(parseClusterConfig(TWO), 1, { runDir: "/run/x y" })).toThrow(/absolute path/);
  });
});

describe("cluster settings: every bad field refused with its name", () => {
  const bad: [string, (c: ClusterConfigInput) => unknown, RegExp][] = [
    ["priorities repeat", (c) => ({ ...c, nodes: [c.nodes[0], { ...c.nodes[1]!, priority: 200 }] }), /nodes\.1\.priority: priority 200 is also node 1's/],
    ["sync addresses repeat", (c) => ({ ...c, nodes: [c.nodes[0], { ...c.nodes[1]!, syncAddress: "192.0.2.1" }] }), /nodes\.1\.syncAddress/],
    ["ids repeat", (c) => ({ ...c, nodes: [c.nodes[0], { ...c.nodes[1]!, id: 1 }] }), /nodes\.1\.id/],
    ["one node", (c) => ({ ...c, nodes: [c.nodes[0]] }), /at least 2 nodes/],
    ["advert not in centiseconds", (c) => ({ ...c, advertIntervalMs: 105 }), /advertIntervalMs: advertIntervalMs must be a multiple of 10/],
    ["advert too short", (c) => ({ ...c, advertIntervalMs: 0 }), /advertIntervalMs must be 10\.\.40950/],
    ["interface with a space", (c) => ({ ...c, interfaces: { ...c.interfaces, sync: "eth 2" } }), /interfaces\.sync/],
    ["client interface too long for its VIP label", (c) => ({ ...c, interfaces: { ...c.interfaces, client: "enp0s31f6xyz1" } }), /interfaces\.client must be at most 11/],
    ["the same interface twice", (c) => ({ ...c, interfaces: { client: "eth0", backend: "eth0", sync: "eth2" } }), /three different interfaces/],
    ["virtual router id 0", (c) => ({ ...c, virtualRouterId: 0 }), /virtualRouterId must be 1\.\.255/],
    ["priority 255 (address owner)", (c) => ({ ...c, nodes: [{ ...c.nodes[0]!, priority: 255 }, c.nodes[1]] }), /priority must be 1\.\.254/],
    ["three nodes without a multicast group", (c) => ({ ...c, nodes: [...c.nodes, { id: 3, name: "lb3", priority: 1, syncAddress: "192.0.2.3" }] }), /conntrackd\.multicastGroup: 3 nodes need/],
    ["a unicast 'multicast' group", (c) => ({ ...c, conntrackd: { multicastGroup: "192.0.2.9" } }), /multicastGroup must be an IPv4 multicast address/],
    ["a gateway that is no address", (c) => ({ ...c, backendGateway: "203.0.113.1" }), /backendGateway/],
    ["a gateway prefix over 32", (c) => ({ ...c, backendGateway: "203.0.113.1/33" }), /prefix must be 0\.\.32/],
    ["an unknown field", (c) => ({ ...c, preempt: true }), /preempt/],
    ["a sync address that is IPv6", (c) => ({ ...c, nodes: [{ ...c.nodes[0]!, syncAddress: "2001:db8::1" }, c.nodes[1]] }), /IPv6/],
  ];
  for (const [what, change, message] of bad) {
    it(what, () => {
      const r = ClusterConfigSchema.safeParse(change(structuredClone(TWO)));
      expect(r.success).toBe(false);
      expect(() => parseClusterConfig(change(structuredClone(TWO)))).toThrow(message);
    });
  }

  it("the defaults: conntrackd on, port 3780, GARP three times a burst", () => {
    const c = parseClusterConfig({ ...TWO, advertIntervalMs: undefined });
    expect(c.advertIntervalMs).toBe(100);
    expect(c.conntrackd).toEqual({ enabled: true, port: 3780 });
    expect(c.garp).toEqual({ masterDelayS: 1, masterRepeat: 3, refreshS: 60 });
    expect(floatingAddresses(c, []).gateways.map((g) => g.address)).toEqual(["198.51.100.1", "203.0.113.1"]);
  });
});

describe("transitions (conntrack-tools' primary-backup.sh)", () => {
  it("master commits, flushes, resyncs and sends a bulk update, in that order; backup checks, shortens, asks for a resync; fault shortens", () => {
    expect(conntrackdSteps("master").map((s) => s.args.join(" "))).toEqual(["-c", "-f", "-R", "-B"]);
    expect(conntrackdSteps("backup").map((s) => s.args.join(" "))).toEqual(["-s", "-t", "-n"]);
    expect(conntrackdSteps("backup")[0]!.startWhenDown).toBe(true);
    expect(conntrackdSteps("fault").map((s) => s.args.join(" "))).toEqual(["-t"]);
    expect(conntrackdSteps("stop")).toEqual([]);
  });

  const node = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-notify-"));
    await writeNodeRuntime(dir, { cluster: "edge", nodeId: 1, nodeName: "lb1", conntrackd: true });
    const calls: string[] = [];
    let conntrackdUp = true;
    const started: string[] = [];
    const run = async (program: string, args: readonly string[], _o?: RunOptions): Promise<RunResult> => {
      calls.push(`${program} ${args.join(" ")}`);
      return { stdout: "", stderr: conntrackdUp ? "" : "connect: No such file", exitCode: conntrackdUp ? 0 : 1 };
    };
    return {
      dir,
      calls,
      started,
      down: () => (conntrackdUp = false),
      deps: { run, startConntrackd: (config: string) => (started.push(config), (conntrackdUp = true)) },
    };
  };

  it("notify records the state, runs the steps against the node's own conntrackd config, and records how they ended", async () => {
    const n = await node();
    const r = await clusterNotify(n.dir, "master", n.deps);
    expect(n.calls).toEqual(["-c", "-f", "-R", "-B"].map((a) => `conntrackd -C ${n.dir}/conntrackd.conf ${a}`));
    expect(r.stepsDone).toBe(true);
    expect(readNodeState(n.dir)).toMatchObject({ state: "master", stepsDone: true, steps: [{ args: ["-c"], exitCode: 0 }, {}, {}, {}] });
    expect(fs.readFileSync(path.join(n.dir, "notify.log"), "utf8")).toMatch(/lb1 conntrackd -c \(commit the external cache into the kernel\): exit 0/);
  });

  it("backup with conntrackd down: starts it (stale lock removed), then shortens and requests the resync", async () => {
    const n = await node();
    fs.writeFileSync(path.join(n.dir, "conntrackd.lock"), "");
    n.down();
    await clusterNotify(n.dir, "backup", n.deps);
    expect(n.started).toEqual([`${n.dir}/conntrackd.conf`]);
    expect(fs.existsSync(path.join(n.dir, "conntrackd.lock"))).toBe(false);
    expect(n.calls.map((c) => c.split(" ").pop())).toEqual(["-s", "-s", "-t", "-n"]);
  });

  it("an event announced before the recorded one (keepalived started both, the older got the lock late) does not rewind the state", async () => {
    const n = await node();
    await writeNodeState(n.dir, { state: "master", at: new Date(Date.now() + 60_000).toISOString(), steps: [], stepsDone: true });
    await clusterNotify(n.dir, "backup", n.deps);
    expect(readNodeState(n.dir)!.state).toBe("master");
  });

  it("a directory that is no node's is refused before anything runs", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-notify-"));
    const calls: string[] = [];
    await expect(clusterNotify(dir, "master", { run: async (p) => (calls.push(p), { stdout: "", stderr: "", exitCode: 0 }), startConntrackd: () => {} })).rejects.toThrow(/not a natfarm cluster node's runtime directory/);
    expect(calls).toEqual([]);
  });
});
