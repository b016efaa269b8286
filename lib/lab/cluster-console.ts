import { z } from "zod";
import { readFull } from "../applier/read.ts";
import { liveFarmHashes, setVersion, type FarmHashes } from "../cluster/applied.ts";
import { ClusterRefusedError, readMaintenance, writeMaintenance } from "../cluster/maintenance.ts";
import { readNodeState } from "../cluster/runtime.ts";
import type { ClusterStatus, NodeStatus } from "../cluster/status.ts";
import { clusterLabInfo, clusterLabStatus, type ClusterLabInfo } from "./cluster.ts";
import { LabInputError, LabNameSchema, parseLabInput } from "./names.ts";
import { LabNotFoundError } from "./topology.ts";

/**
 * The cluster lab as the console's Cluster page and `natfarm cluster status`
 * see it (the agent's `cluster.status` and `cluster.maintenance`): the
 * status model's observation, plus what only root can read — each node's
 * maintenance switch and the farm rules its kernel holds, reduced to
 * versions (lib/cluster/applied.ts) — and the maintenance handover itself.
 */
export interface NodeApplied {
  /** Version of the farm set this node's kernel holds, or null when the kernel could not be read. */
  version: string | null;
  /** Per farm with rules in the kernel: its rules' hash. */
  farms: FarmHashes;
  error?: string;
}

export interface ClusterReading {
  status: ClusterStatus;
  nodes: { id: number; name: string; maintenance: boolean; applied: NodeApplied }[];
}

export interface MaintenanceResult {
  node: string;
  on: boolean;
  /** False when the node already was in (or out of) maintenance. */
  changed: boolean;
  /** The node that holds the floating addresses afterwards. */
  master: string | null;
  ms: number;
  reading: ClusterReading;
}

const StatusInput = z.object({ name: LabNameSchema }).strict();
export const ClusterMaintenanceInput = z
  .object({
    name: LabNameSchema,
    node: z.number({ error: "node must be a node id (a number)" }).int({ error: "node must be a whole number" }).min(1, { error: "node must be 1..8" }).max(8, { error: "node must be 1..8" }),
    on: z.boolean({ error: "on must be true (into maintenance) or false (back in service)" }),
  })
  .strict();

async function requireInfo(name: string): Promise<ClusterLabInfo> {
  const info = await clusterLabInfo(name);
  if (!info) throw new LabNotFoundError(name);
  return info;
}

async function appliedOf(ns: string): Promise<NodeApplied> {
  try {
    const view = await readFull({ kind: "netns", name: ns }, 10_000);
    const farms = liveFarmHashes([...view.owned.values()].flatMap((c) => c.rules));
    return { version: setVersion(farms), farms };
  } catch (e) {
    return { version: null, farms: {}, error: (e as Error).message };
  }
}

async function read(info: ClusterLabInfo): Promise<ClusterReading> {
  const [status, nodes] = await Promise.all([
    clusterLabStatus({ name: info.name }),
    Promise.all(info.nodes.map(async (n) => ({ id: n.id, name: n.name, maintenance: await readMaintenance(n.runDir), applied: await appliedOf(n.ns) }))),
  ]);
  return { status, nodes };
}

export async function clusterLabReading(opts: { name: string }): Promise<ClusterReading> {
  const { name } = parseLabInput("cluster.status", StatusInput, opts);
  return read(await requireInfo(name));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const actsAsMaster = (n: NodeStatus) => n.role === "master" || n.holds.length > 0;

/** A node that can take the floating addresses now without losing connections: healthy backup, synced, not in maintenance. */
function readyToTakeOver(n: NodeStatus, inMaintenance: boolean, conntrackd: boolean): string | null {
  if (inMaintenance) return `${n.name} is in maintenance`;
  if (n.role !== "backup") return `${n.name} is ${n.role}, not a standing-by backup`;
  if (!n.transitionDone) return `${n.name}'s conntrackd has not finished its resync`;
  const down = Object.entries(n.links).filter(([, s]) => s !== "up");
  if (down.length) return `${n.name} has ${down.map(([l, s]) => `${l} ${s}`).join(", ")}`;
  if (conntrackd && !n.conntrackd.running) return `conntrackd is not running on ${n.name}: established connections would be lost`;
  return null;
}

/**
 * Maintenance on: the node goes to FAULT through its tracked file and, when
 * it was master, the backup takes over — refused, with nothing changed,
 * unless a backup is ready to (otherwise the VIPs would answer nowhere).
 * Maintenance off: the node comes back as backup and resyncs; the master
 * keeps its role (nopreempt), so no connection moves. Returns once the
 * cluster has settled; a handover that does not happen in time is undone.
 */
export async function clusterLabMaintenance(opts: { name: string; node: number; on: boolean; timeoutMs?: number }): Promise<MaintenanceResult> {
  const { name, node, on } = parseLabInput("cluster.maintenance", ClusterMaintenanceInput, { name: opts.name, node: opts.node, on: opts.on });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const started = performance.now();
  const info = await requireInfo(name);
  const n = info.nodes.find((x) => x.id === node);
  if (!n) throw new LabInputError("cluster.maintenance", [{ field: "node", message: `cluster ${info.config.name} has nodes ${info.nodes.map((x) => x.id).join(", ")}, not ${node}` }]);
  const before = await read(info);
  const mine = before.status.nodes.find((x) => x.id === node)!;
  const inMaintenance = new Map(before.nodes.map((x) => [x.id, x.maintenance]));
  const done = (changed: boolean, reading: ClusterReading): MaintenanceResult => ({ node: n.name, on, changed, master: reading.status.master, ms: Math.round(performance.now() - started), reading });
  if (inMaintenance.get(node) === on) return done(false, before);

  if (on && actsAsMaster(mine)) {
    const peers = before.status.nodes.filter((x) => x.id !== node);
    const reasons = peers.map((p) => readyToTakeOver(p, inMaintenance.get(p.id) ?? false, info.config.conntrackd.enabled));
    if (!reasons.some((r) => r === null)) {
      throw new ClusterRefusedError(`${n.name} is master and no other node can take over (${reasons.join("; ")}): maintenance refused, nothing was changed`);
    }
  }

  await writeMaintenance(n.runDir, on);
  const settled = (r: ClusterReading) => {
    const me = r.status.nodes.find((x) => x.id === node)!;
    const state = readNodeState(n.runDir);
    if (on) {
      // Out of the way, and (when it held them) the addresses answer from a node whose takeover committed the synced connections.
      if (me.role !== "fault" || me.holds.length > 0) return false;
      if (!actsAsMaster(mine)) return true;
      const m = r.status.nodes.find((x) => x.name === r.status.master);
      // Holding the addresses is not enough: its master transition (the commit of the synced table) must have run.
      return Boolean(m && m.id !== node && m.role === "master" && m.transitionDone && m.missing.length === 0);
    }
    // Back as backup with its resync requested — or master, when no other node was.
    return (me.role === "backup" || (me.role === "master" && before.status.master === null)) && Boolean(state?.stepsDone);
  };
  for (;;) {
    const r = await read(info);
    if (settled(r)) return done(true, r);
    if (performance.now() - started > timeoutMs) {
      if (on) await writeMaintenance(n.runDir, false);
      throw new Error(
        `${n.name} did not ${on ? "hand over" : "come back"} within ${Math.round(timeoutMs / 1000)} s (now ${r.status.nodes.map((x) => `${x.name} ${x.role}`).join(", ")})${on ? ": maintenance undone" : ""}`,
      );
    }
    await sleep(100);
  }
}
