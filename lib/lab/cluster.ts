import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { applyFarms, validateFarms } from "../applier/apply.ts";
import { parseClusterConfig, type ClusterConfig } from "../cluster/config.ts";
import { conntrackdFiles, renderConntrackd } from "../cluster/conntrackd.ts";
import { floatingAddresses, renderKeepalived } from "../cluster/keepalived.ts";
import { maintenanceFile } from "../cluster/maintenance.ts";
import { readNodeState, runtimeFiles, writeNodeRuntime } from "../cluster/runtime.ts";
import { clusterStatus, parseConntrackdStats, type ClusterStatus, type NodeObservation } from "../cluster/status.ts";
import { projectRoot } from "../db/env.ts";
import { runPrivileged } from "../privileged/run.ts";
import { spawnPrivilegedDetached } from "../privileged/spawn.ts";
import { FARM_NAME_MAX, FARM_NAME_PATTERN, MODES } from "../farms/schema.ts";
import { BackendCountSchema, backendIp, backendName, backendNsName, LAB, LabInputError, LabNameSchema, labPrefix, parseLabInput, PortListSchema, VipSchema } from "./names.ts";
import { ipBatch, listNamespaces, namespacePids, namespacesWithPrefix, sysctlIn } from "./netns.ts";
import { defaultPorts, labStateDir, processAlive, readLabState, startBackendServer, writeLabState } from "./servers.ts";
import { labDown, LabExistsError, LabNotFoundError } from "./topology.ts";

/**
 * The cluster lab (issue 12, item 5): `natfarm lab up --name N --cluster 2`.
 * Namespaces linked only to each other through a switch namespace, only
 * documentation ranges:
 *
 *   N-client 198.51.100.2 ─┐                 ┌─ N-b0 203.0.113.10 (default via .1)
 *                          brc ── N-sw ── brb ┼─ N-b1 203.0.113.11 …
 *   N-n1 cli0 198.51.100.3 ┤                 ├─ bk0 203.0.113.2  N-n1
 *   N-n2 cli0 198.51.100.4 ┘                 └─ bk0 203.0.113.3  N-n2
 *                       N-n1 sync0 192.0.2.1 ── brs ── 192.0.2.2 sync0 N-n2
 *
 * Floating with the master (keepalived): 198.51.100.1 (the client's
 * gateway), 203.0.113.1 (the backends' gateway) and every farm's VIP. Each
 * node runs keepalived and conntrackd with its own configuration, pid files,
 * lock and control socket in `<lab state>/nX/`, and the same farm set in its
 * own kernel (`netns:N-nX`).
 *
 * "Pulling a node's links" sets its three switch ports down, so the node
 * sees its carrier go (as with a cable pulled) and keepalived goes to FAULT.
 * Cutting only the sync link takes its switch ports off the bridge: the
 * carrier stays up on both nodes, they stop hearing each other, and both
 * become master — the split brain `cluster status` must call critical.
 */

export const CLUSTER_LAB = {
  switchNs: (name: string) => `${name}-sw`,
  nodeNs: (name: string, id: number) => `${name}-n${id}`,
  clientGateway: "198.51.100.1",
  backendGateway: "203.0.113.1",
  nodeClientIp: (id: number) => `198.51.100.${2 + id}`,
  nodeBackendIp: (id: number) => `203.0.113.${1 + id}`,
  nodeSyncIp: (id: number) => `192.0.2.${id}`,
  ifaces: { client: "cli0", backend: "bk0", sync: "sync0" },
  bridges: { client: "brc", backend: "brb", sync: "brs" },
  virtualRouterId: 51,
  maxNodes: 4,
  /**
   * More than two nodes: conntrackd's UDP channel reaches one peer, so the
   * sync goes to a multicast group on the sync link. From MCAST-TEST-NET
   * (233.252.0.0/24, RFC 6676: multicast's documentation range), joined and
   * sent on sync0 only, whose bridge links nothing but the lab's nodes.
   */
  syncGroup: "233.252.0.51",
} as const;

/** Switch-side port names of node `id`'s three links. */
const ports = (id: number) => ({ client: `n${id}c`, backend: `n${id}b`, sync: `n${id}s` });

export function clusterLabConfig(name: string, nodes = 2, opts: { conntrackd?: boolean } = {}): ClusterConfig {
  return parseClusterConfig({
    name: `lab-${name}`,
    virtualRouterId: CLUSTER_LAB.virtualRouterId,
    advertIntervalMs: 100,
    interfaces: CLUSTER_LAB.ifaces,
    clientGateway: `${CLUSTER_LAB.clientGateway}/32`,
    backendGateway: `${CLUSTER_LAB.backendGateway}/32`,
    conntrackd: { enabled: opts.conntrackd ?? true, ...(nodes > 2 ? { multicastGroup: CLUSTER_LAB.syncGroup } : {}) },
    nodes: Array.from({ length: nodes }, (_, i) => ({
      id: i + 1,
      name: `n${i + 1}`,
      // Node 1 wins the first election; nopreempt keeps whoever is master afterwards.
      priority: 200 - i * 50,
      syncAddress: CLUSTER_LAB.nodeSyncIp(i + 1),
      clientAddress: CLUSTER_LAB.nodeClientIp(i + 1),
      backendAddress: CLUSTER_LAB.nodeBackendIp(i + 1),
    })),
  });
}

export const nodeRunDir = (name: string, id: number) => path.join(labStateDir(name), `n${id}`);

/** The notify command keepalived runs: this installation's natfarm CLI. */
export function notifyArgv(runDir: string): string[] {
  const bin = path.join(process.env.NATFARM_BIN_DIR || path.join(projectRoot(), "bin"), "natfarm.mjs");
  return [process.execPath, bin, "cluster", "notify", "--run-dir", runDir];
}

export interface ClusterLabInfo {
  name: string;
  cluster: true;
  clientNs: string;
  switchNs: string;
  nodes: { id: number; name: string; ns: string; target: string; runDir: string; clientIp: string; backendIp: string; syncIp: string }[];
  backends: { name: string; ns: string; ip: string }[];
  clientIp: string;
  clientGateway: string;
  backendGateway: string;
  ports: number[];
  config: ClusterConfig;
}

const ClusterUpInput = z.object({
  name: LabNameSchema,
  nodes: z
    .number({ error: (iss) => `a cluster lab has 2 to ${CLUSTER_LAB.maxNodes} nodes, got ${JSON.stringify(iss.input)}` })
    .int({ error: (iss) => `a cluster lab has 2 to ${CLUSTER_LAB.maxNodes} nodes, got ${JSON.stringify(iss.input)}` })
    .min(2, { error: (iss) => `a cluster lab has 2 to ${CLUSTER_LAB.maxNodes} nodes, got ${JSON.stringify(iss.input)}` })
    .max(CLUSTER_LAB.maxNodes, { error: (iss) => `a cluster lab has 2 to ${CLUSTER_LAB.maxNodes} nodes, got ${JSON.stringify(iss.input)}` }),
  backends: BackendCountSchema,
  ports: PortListSchema.optional(),
  ownerPid: z.number().int().positive().optional(),
  conntrackd: z.boolean().optional(),
});

const NO_IPV6 = { "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1" };

function buildClusterInfo(name: string, backends: number, labPorts: number[], config: ClusterConfig): ClusterLabInfo {
  return {
    name,
    cluster: true,
    clientNs: `${name}-client`,
    switchNs: CLUSTER_LAB.switchNs(name),
    nodes: config.nodes.map((n) => ({
      id: n.id,
      name: n.name,
      ns: CLUSTER_LAB.nodeNs(name, n.id),
      target: `netns:${CLUSTER_LAB.nodeNs(name, n.id)}`,
      runDir: nodeRunDir(name, n.id),
      clientIp: n.clientAddress!,
      backendIp: n.backendAddress!,
      syncIp: n.syncAddress,
    })),
    backends: Array.from({ length: backends }, (_, i) => ({ name: backendName(i), ns: backendNsName(name, i), ip: backendIp(i) })),
    clientIp: LAB.clientIp,
    clientGateway: CLUSTER_LAB.clientGateway,
    backendGateway: CLUSTER_LAB.backendGateway,
    ports: labPorts,
    config,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * Builds the cluster lab and starts its cluster: conntrackd on both nodes,
 * then keepalived on node 1 (which becomes master), then on node 2 (which,
 * with nopreempt and a master already there, stays backup). Refuses when any
 * namespace of the lab exists; on a failure midway removes everything.
 */
export async function clusterLabUp(opts: { name: string; nodes: number; backends: number; ports?: number[]; ownerPid?: number; conntrackd?: boolean }): Promise<ClusterLabInfo> {
  const input = parseLabInput("labUp", ClusterUpInput, opts);
  const labPorts = input.ports ?? defaultPorts();
  const existing = await namespacesWithPrefix(labPrefix(input.name));
  if (existing.length) throw new LabExistsError(input.name, existing);
  const config = clusterLabConfig(input.name, input.nodes, { conntrackd: input.conntrackd });
  const info = buildClusterInfo(input.name, input.backends, labPorts, config);
  const all = [info.switchNs, info.clientNs, ...info.nodes.map((n) => n.ns), ...info.backends.map((b) => b.ns)];
  try {
    await ipBatch(all.map((ns) => `netns add ${ns}`));
    await Promise.all(all.map((ns) => sysctlIn(ns, NO_IPV6, true)));
    const { bridges: br, ifaces } = CLUSTER_LAB;
    const eth = LAB.nsIface;
    // Every veth is made inside the switch namespace with its peer placed
    // straight into the other namespace: no link ever exists in the root namespace.
    await ipBatch(
      [
        "link set lo up",
        ...Object.values(br).flatMap((b) => [`link add ${b} type bridge`, `link set ${b} up`]),
        // The sync group's frames reach every node's port whether or not the bridge saw an IGMP join yet.
        `link set ${br.sync} type bridge mcast_snooping 0`,
        `link add c0 type veth peer name ${eth} netns ${info.clientNs}`,
        `link set c0 master ${br.client}`,
        "link set c0 up",
        ...info.nodes.flatMap((n) => {
          const p = ports(n.id);
          return [
            `link add ${p.client} type veth peer name ${ifaces.client} netns ${n.ns}`,
            `link add ${p.backend} type veth peer name ${ifaces.backend} netns ${n.ns}`,
            `link add ${p.sync} type veth peer name ${ifaces.sync} netns ${n.ns}`,
            `link set ${p.client} master ${br.client}`,
            `link set ${p.backend} master ${br.backend}`,
            `link set ${p.sync} master ${br.sync}`,
            `link set ${p.client} up`,
            `link set ${p.backend} up`,
            `link set ${p.sync} up`,
          ];
        }),
        ...info.backends.flatMap((b, i) => [`link add vb${i} type veth peer name ${eth} netns ${b.ns}`, `link set vb${i} master ${br.backend}`, `link set vb${i} up`]),
      ],
      info.switchNs,
    );
    await Promise.all([
      ipBatch(["link set lo up", `addr add ${LAB.clientIp}/24 dev ${eth}`, `link set ${eth} up`, `route add default via ${CLUSTER_LAB.clientGateway}`], info.clientNs),
      ...info.backends.map((b) => ipBatch(["link set lo up", `addr add ${b.ip}/24 dev ${eth}`, `link set ${eth} up`, `route add default via ${CLUSTER_LAB.backendGateway}`], b.ns)),
      ...info.nodes.map(async (n) => {
        await ipBatch(
          [
            "link set lo up",
            `addr add ${n.clientIp}/24 dev ${ifaces.client}`,
            `addr add ${n.backendIp}/24 dev ${ifaces.backend}`,
            `addr add ${n.syncIp}/24 dev ${ifaces.sync}`,
            ...Object.values(ifaces).map((i) => `link set ${i} up`),
          ],
          n.ns,
        );
        await prepareNodeKernel(n.ns);
      }),
    ]);
    await writeLabState({ name: input.name, backends: input.backends, ports: labPorts, createdAt: new Date().toISOString(), ...(input.ownerPid ? { ownerPid: input.ownerPid } : {}) });
    await writeClusterState(input.name, { nodes: input.nodes, conntrackd: config.conntrackd.enabled, farms: [] });
    await Promise.all(info.backends.map((_, i) => startBackendServer(input.name, i, labPorts)));

    for (const n of info.nodes) {
      await writeNodeRuntime(n.runDir, { cluster: config.name, nodeId: n.id, nodeName: n.name, conntrackd: config.conntrackd.enabled, netns: n.ns });
      await writeNodeConfigs(info, n.id, []);
    }
    if (config.conntrackd.enabled) await Promise.all(info.nodes.map((n) => startConntrackd(info, n.id)));
    // One at a time: the first to start is master (see above), so node 1 is.
    for (const n of info.nodes) {
      await startKeepalived(info, n.id);
      await waitFor(`node ${n.name} announcing its first VRRP state`, 20_000, async () => {
        const s = readNodeState(n.runDir);
        return s && s.stepsDone && (n.id === 1 ? s.state === "master" : s.state === "backup");
      });
    }
    return info;
  } catch (err) {
    await labDown({ name: input.name }).catch(() => {});
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`labUp "${input.name}" (cluster) failed and was rolled back: ${message}`, { cause: err });
  }
}

/**
 * The node's kernel as a balancer of a cluster needs it. Forwarding, and:
 * a packet of a connection this kernel does not know (mid-stream, before the
 * takeover committed the synced table) must be dropped, not picked up
 * (`nf_conntrack_tcp_loose=0`) — picked up, it would be balanced afresh and
 * meet a backend that never heard of it; and not delivered to the node itself
 * (a VIP is local), whose TCP stack would answer with a reset that ends the
 * client's connection for good. Dropped, the client retransmits and the
 * retransmission meets the committed entry. In the filter table, which
 * natfarm's rules never touch.
 */
async function prepareNodeKernel(ns: string): Promise<void> {
  await sysctlIn(ns, { "net.ipv4.ip_forward": "1", "net.netfilter.nf_conntrack_tcp_loose": "0" });
  await runPrivileged(
    "iptables-restore",
    ["-w", "--noflush"],
    {
      target: { kind: "netns", name: ns },
      input: ["*filter", "-A INPUT -m conntrack --ctstate INVALID -j DROP", "-A FORWARD -m conntrack --ctstate INVALID -j DROP", "COMMIT", ""].join("\n"),
    },
  );
}

interface ClusterState {
  nodes: number;
  conntrackd: boolean;
  /** The farms' VIPs and modes the keepalived configurations carry now. */
  farms: { name: string; vip: string; mode: "nat" | "dnat" }[];
}
const clusterStateFile = (name: string) => path.join(labStateDir(name), "cluster.json");

async function writeClusterState(name: string, state: ClusterState): Promise<void> {
  const file = clusterStateFile(name);
  // Per process: each node's agent may write it at once (its own node's keepalived set).
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state, null, 2) + "\n");
  await fsp.rename(tmp, file);
}

async function readClusterState(name: string): Promise<ClusterState | null> {
  try {
    return JSON.parse(await fsp.readFile(clusterStateFile(name), "utf8")) as ClusterState;
  } catch {
    return null;
  }
}

async function writeNodeConfigs(info: ClusterLabInfo, id: number, farms: ClusterState["farms"]): Promise<void> {
  const runDir = nodeRunDir(info.name, id);
  const files = runtimeFiles(runDir);
  await fsp.writeFile(files.keepalivedConfig, renderKeepalived(info.config, id, farms, { notify: notifyArgv(runDir), maintenanceFile: maintenanceFile(runDir) }));
  await fsp.writeFile(conntrackdFiles(runDir).config, renderConntrackd(info.config, id, { runDir }));
}

/** The cluster lab as recorded (its namespaces exist), or null when `name` is no cluster lab. */
export async function clusterLabInfo(name: string): Promise<ClusterLabInfo | null> {
  parseLabInput("clusterLabInfo", z.object({ name: LabNameSchema }), { name });
  const [state, lab] = await Promise.all([readClusterState(name), readLabState(name)]);
  if (!state || !lab) return null;
  if (!(await listNamespaces()).includes(CLUSTER_LAB.switchNs(name))) return null;
  return buildClusterInfo(name, lab.backends, lab.ports, clusterLabConfig(name, state.nodes, { conntrackd: state.conntrackd }));
}

async function requireClusterLab(name: string): Promise<ClusterLabInfo> {
  const info = await clusterLabInfo(name);
  if (!info) throw new LabNotFoundError(name);
  return info;
}

const NodeInput = z.object({ name: LabNameSchema, node: z.number().int().min(1).max(8) });

function nodeOf(info: ClusterLabInfo, id: number) {
  const n = info.nodes.find((x) => x.id === id);
  if (!n) throw new LabInputError("cluster lab", [{ field: "node", message: `lab "${info.name}" has nodes ${info.nodes.map((x) => x.id).join(", ")}, not ${id}` }]);
  return n;
}

async function startKeepalived(info: ClusterLabInfo, id: number): Promise<void> {
  const n = nodeOf(info, id);
  const files = runtimeFiles(n.runDir);
  await fsp.rm(files.keepalivedPid, { force: true });
  await fsp.rm(files.vrrpPid, { force: true });
  spawnPrivilegedDetached(
    "ip",
    ["netns", "exec", n.ns, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "-f", files.keepalivedConfig, "-p", files.keepalivedPid, "-r", files.vrrpPid],
    { logFile: files.keepalivedLog },
  );
  await waitFor(`keepalived on ${n.name} writing its pid files`, 10_000, async () => fs.existsSync(files.keepalivedPid) && fs.existsSync(files.vrrpPid));
}

function pidIn(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 1 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

async function startConntrackd(info: ClusterLabInfo, id: number): Promise<void> {
  const n = nodeOf(info, id);
  const files = conntrackdFiles(n.runDir);
  await fsp.rm(files.lock, { force: true });
  spawnPrivilegedDetached("conntrackd", ["-C", files.config], { target: { kind: "netns", name: n.ns }, logFile: path.join(n.runDir, "conntrackd.out") });
  await waitFor(`conntrackd on ${n.name} answering`, 10_000, async () => (await conntrackdCommand(n.ns, files.config, ["-s"])).exitCode === 0);
}

const conntrackdCommand = (ns: string, config: string, args: string[]) =>
  runPrivileged("conntrackd", ["-C", config, ...args], { target: { kind: "netns", name: ns }, allowFailure: true, timeoutMs: 10_000 });

/** Stops conntrackd on a node (`conntrackd -k`): the "without connection sync" case of the tests. */
export async function clusterLabStopConntrackd(opts: { name: string; node: number }): Promise<void> {
  const { name, node } = parseLabInput("clusterLabStopConntrackd", NodeInput, opts);
  const info = await requireClusterLab(name);
  const n = nodeOf(info, node);
  const files = conntrackdFiles(n.runDir);
  await conntrackdCommand(n.ns, files.config, ["-k"]);
  await waitFor(`conntrackd on ${n.name} gone`, 10_000, async () => (await conntrackdCommand(n.ns, files.config, ["-s"])).exitCode !== 0);
}

/** Starts conntrackd on a node again and asks for a resync from the master (a backup) or sends a bulk update (the master). */
export async function clusterLabStartConntrackd(opts: { name: string; node: number }): Promise<void> {
  const { name, node } = parseLabInput("clusterLabStartConntrackd", NodeInput, opts);
  const info = await requireClusterLab(name);
  const n = nodeOf(info, node);
  const files = conntrackdFiles(n.runDir);
  if ((await conntrackdCommand(n.ns, files.config, ["-s"])).exitCode !== 0) await startConntrackd(info, node);
  const state = readNodeState(n.runDir)?.state;
  if (state === "master") {
    await conntrackdCommand(n.ns, files.config, ["-R"]);
    await conntrackdCommand(n.ns, files.config, ["-B"]);
  } else await conntrackdCommand(n.ns, files.config, ["-n"]);
}

const FailInput = NodeInput.extend({ links: z.enum(["all", "sync"], { error: (iss) => `links must be "all" or "sync", got ${JSON.stringify(iss.input)}` }).default("all") });

/**
 * `natfarm lab fail --node K [--links sync]`: pulls node K's links (all: its
 * three switch ports go down, the node loses carrier) or cuts only its sync
 * link (taken off the bridge: carrier stays up, no frame passes).
 */
export async function clusterLabFail(opts: { name: string; node: number; links?: "all" | "sync" }): Promise<void> {
  const { name, node, links } = parseLabInput("labFail", FailInput, opts);
  const info = await requireClusterLab(name);
  nodeOf(info, node);
  const p = ports(node);
  await ipBatch(links === "all" ? [`link set ${p.client} down`, `link set ${p.backend} down`, `link set ${p.sync} down`] : [`link set ${p.sync} nomaster`], info.switchNs);
}

/** `natfarm lab heal --node K`: every link of node K back up and on its bridge. */
export async function clusterLabHeal(opts: { name: string; node: number }): Promise<void> {
  const { name, node } = parseLabInput("labHeal", NodeInput, opts);
  const info = await requireClusterLab(name);
  nodeOf(info, node);
  const p = ports(node);
  const { bridges: br } = CLUSTER_LAB;
  await ipBatch(
    [`link set ${p.client} master ${br.client}`, `link set ${p.backend} master ${br.backend}`, `link set ${p.sync} master ${br.sync}`, `link set ${p.client} up`, `link set ${p.backend} up`, `link set ${p.sync} up`],
    info.switchNs,
  );
}

/**
 * Renders every node's keepalived configuration for these farms' VIPs and
 * reloads keepalived (SIGHUP) where it changed. The rules themselves are the
 * caller's (lib/cluster/apply.ts applies the same farm set to each node's kernel).
 */
export async function clusterLabSetFarms(opts: { name: string; farms: { name: string; vip: string; mode: "nat" | "dnat" }[] }): Promise<{ reloaded: string[] }> {
  const info = await requireClusterLab(opts.name);
  const farms = opts.farms.map((f) => ({ name: f.name, vip: f.vip, mode: f.mode }));
  floatingAddresses(info.config, farms); // refuses before anything is written
  const state = (await readClusterState(info.name))!;
  const reloaded: string[] = [];
  for (const n of info.nodes) {
    const file = runtimeFiles(n.runDir).keepalivedConfig;
    const before = await fsp.readFile(file, "utf8").catch(() => "");
    await writeNodeConfigs(info, n.id, farms);
    if ((await fsp.readFile(file, "utf8")) === before) continue;
    const pid = pidIn(runtimeFiles(n.runDir).keepalivedPid);
    if (pid) {
      await runPrivileged("kill", ["-HUP", String(pid)]);
      reloaded.push(n.name);
    }
  }
  await writeClusterState(info.name, { ...state, farms });
  return { reloaded };
}

/** What a node's keepalived floats besides the gateways: the farms' VIPs (the name and mode say why, and whether a backend gateway is needed). */
export const FarmVipsSchema = z
  .array(
    z
      .object({
        name: z.string().max(FARM_NAME_MAX).regex(FARM_NAME_PATTERN, { error: "farm names hold only letters, digits, _ and -" }),
        vip: VipSchema,
        mode: z.enum(MODES, { error: (iss) => `mode must be nat or dnat, got ${JSON.stringify(iss.input)}` }),
      })
      .strict(),
    { error: "farms must be an array of {name, vip, mode}" },
  )
  .max(50_000, { error: "at most 50000 farms" });
export const NodeKeepalivedInput = NodeInput.extend({ farms: FarmVipsSchema }).strict();

/**
 * One node's keepalived brought to a farm set (the node's sync loop calls it
 * through the node's agent after every change of the shared farms, whichever
 * node made it): its configuration rendered for these VIPs, written and
 * reloaded (SIGHUP) only when the text changed, so an unchanged pass costs
 * one render and no VRRP disturbance. Refused (nothing written) when the
 * farms do not fit the cluster's settings (a VIP that is a node's address, a
 * DNAT farm without a backend gateway).
 */
export async function clusterLabNodeKeepalived(opts: { name: string; node: number; farms: { name: string; vip: string; mode: "nat" | "dnat" }[] }): Promise<{ node: string; changed: boolean; reloaded: boolean }> {
  const { name, node, farms } = parseLabInput("cluster.keepalived", NodeKeepalivedInput, opts);
  const info = await requireClusterLab(name);
  const n = nodeOf(info, node);
  const files = runtimeFiles(n.runDir);
  const text = renderKeepalived(info.config, n.id, farms, { notify: notifyArgv(n.runDir), maintenanceFile: maintenanceFile(n.runDir) });
  const before = await fsp.readFile(files.keepalivedConfig, "utf8").catch(() => "");
  if (text === before) return { node: n.name, changed: false, reloaded: false };
  const tmp = `${files.keepalivedConfig}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, files.keepalivedConfig);
  // The status view's expected floating set follows the last set a node was given.
  const state = await readClusterState(info.name);
  if (state) await writeClusterState(info.name, { ...state, farms });
  const pid = pidIn(files.keepalivedPid);
  if (pid) await runPrivileged("kill", ["-HUP", String(pid)]);
  return { node: n.name, changed: true, reloaded: pid !== null };
}

/**
 * The same farm set in every node's kernel, then the VIPs in every node's
 * keepalived. The marks are resolved once, by the first node's apply (which
 * keeps the marks its kernel already has), and that resolved set goes to the
 * others: a connection synced from one node carries a mark that means the
 * same backend on every node.
 */
export async function clusterLabApply(opts: { name: string; farms: unknown }): Promise<{ nodes: { name: string; changed: boolean; rulesAdded: number; rulesDeleted: number; durationMs: number }[]; reloaded: string[] }> {
  parseLabInput("clusterLabApply", z.object({ name: LabNameSchema, farms: z.unknown() }), opts);
  const info = await requireClusterLab(opts.name);
  const farms = validateFarms(opts.farms);
  floatingAddresses(info.config, farms);
  const results: { name: string; changed: boolean; rulesAdded: number; rulesDeleted: number; durationMs: number }[] = [];
  let resolved: unknown = farms;
  for (const n of info.nodes) {
    const r = await applyFarms(resolved, { target: { kind: "netns", name: n.ns } });
    resolved = r.farms;
    results.push({ name: n.name, changed: r.changed, rulesAdded: r.stats.rulesAdded, rulesDeleted: r.stats.rulesDeleted, durationMs: Math.round(r.durationMs) });
  }
  const { reloaded } = await clusterLabSetFarms({ name: info.name, farms });
  return { nodes: results, reloaded };
}

/** What each node of the cluster lab shows now: the input of the status model. */
export async function clusterLabObserve(name: string): Promise<{ info: ClusterLabInfo; floating: string[]; nodes: NodeObservation[] }> {
  const info = await requireClusterLab(name);
  const state = await readClusterState(name);
  const { gateways, vips } = floatingAddresses(info.config, state?.farms ?? []);
  const floating = [...gateways, ...vips].map((a) => a.address);
  const namespaces = new Set(await listNamespaces());
  const nodes = await Promise.all(
    info.nodes.map(async (n): Promise<NodeObservation> => {
      const reachable = namespaces.has(n.ns);
      const files = runtimeFiles(n.runDir);
      const st = readNodeState(n.runDir);
      const [addrs, links, ct] = reachable
        ? await Promise.all([
            runPrivileged("ip", ["-n", n.ns, "-j", "-4", "addr", "show"], { allowFailure: true }),
            runPrivileged("ip", ["-n", n.ns, "-j", "link", "show"], { allowFailure: true }),
            info.config.conntrackd.enabled ? conntrackdCommand(n.ns, conntrackdFiles(n.runDir).config, ["-s"]) : Promise.resolve(null),
          ])
        : [null, null, null];
      const held = new Set(
        (JSON.parse(addrs?.stdout.trim() || "[]") as { addr_info?: { local?: string }[] }[]).flatMap((l) => l.addr_info ?? []).map((a) => a.local),
      );
      const linkState = new Map((JSON.parse(links?.stdout.trim() || "[]") as { ifname: string; operstate?: string }[]).map((l) => [l.ifname, l.operstate]));
      return {
        id: n.id,
        name: n.name,
        reachable,
        keepalivedRunning: reachable && pidIn(files.keepalivedPid) !== null && pidIn(files.vrrpPid) !== null,
        vrrpState: st?.state ?? null,
        vrrpSince: st?.at ?? null,
        transitionDone: st?.stepsDone ?? false,
        holds: floating.filter((a) => held.has(a)),
        links: Object.fromEntries(
          Object.values(CLUSTER_LAB.ifaces).map((i) => {
            const s = linkState.get(i);
            return [i, s === undefined ? "missing" : s === "UP" ? "up" : "down"];
          }),
        ),
        conntrackd: {
          enabled: info.config.conntrackd.enabled,
          running: ct?.exitCode === 0,
          stats: ct?.exitCode === 0 ? parseConntrackdStats(ct.stdout) : null,
        },
      };
    }),
  );
  return { info, floating, nodes };
}

export async function clusterLabStatus(opts: { name: string }): Promise<ClusterStatus> {
  const { name } = parseLabInput("clusterStatus", z.object({ name: LabNameSchema }), opts);
  const { info, floating, nodes } = await clusterLabObserve(name);
  return clusterStatus({ cluster: info.config.name, floating, nodes });
}

/** conntrackd's caches on a node: `-i` (internal) or `-e` (external), one line per entry. */
export async function clusterLabConntrackdDump(opts: { name: string; node: number; cache: "internal" | "external" }): Promise<string[]> {
  const { name, node } = parseLabInput("clusterLabConntrackdDump", NodeInput, opts);
  const info = await requireClusterLab(name);
  const n = nodeOf(info, node);
  const r = await conntrackdCommand(n.ns, conntrackdFiles(n.runDir).config, [opts.cache === "internal" ? "-i" : "-e"]);
  if (r.exitCode !== 0) throw new Error(`conntrackd on ${n.name} does not answer: ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter((l) => l.trim());
}

/** Processes of a node's namespace (keepalived, its VRRP child, conntrackd, notify runs): for tests that check nothing is left. */
export async function clusterLabNodePids(name: string, node: number): Promise<number[]> {
  return namespacePids(CLUSTER_LAB.nodeNs(name, node));
}

/** Ends keepalived on a node the way an operator's `systemctl stop` would (SIGTERM: it releases the addresses). */
export async function clusterLabStopKeepalived(opts: { name: string; node: number }): Promise<void> {
  const { name, node } = parseLabInput("clusterLabStopKeepalived", NodeInput, opts);
  const info = await requireClusterLab(name);
  const n = nodeOf(info, node);
  const pid = pidIn(runtimeFiles(n.runDir).keepalivedPid);
  if (pid) await runPrivileged("kill", ["-TERM", String(pid)]);
  await waitFor(`keepalived on ${n.name} gone`, 15_000, async () => pidIn(runtimeFiles(n.runDir).keepalivedPid) === null);
}

