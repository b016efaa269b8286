import path from "node:path";
import { z } from "zod";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { KernelPort } from "../kernel/port.ts";
import type { Target } from "../privileged/target.ts";
import { rowToResolved } from "../service/farm-rows.ts";
import { createFarmSetCache } from "../service/farm-set-cache.ts";
import type { FarmRow } from "../service/farm-rows.ts";
import { desiredFarmHash, setVersion, type FarmHashes } from "./applied.ts";
import { readNodeRuntime, readNodeState } from "./runtime.ts";

/**
 * Each node of a cluster brings its own kernel to the shared desired state:
 * whatever node's console, API or checker changed the database's farms, every
 * node's sync loop notices it and applies it through its own agent, then
 * records what it applied (ClusterNode) so the Cluster page shows each
 * node's version from the record beside the version read back from its kernel.
 *
 * Noticing is a poll of one row: FarmRevision, which the database's own
 * triggers bump on every desired-state write (so no writer can forget it, and
 * no clock is compared: nodes' clocks may disagree, a counter cannot). A
 * primary-key read every 200 ms costs nothing next to an apply; PostgreSQL's
 * LISTEN/NOTIFY would save the poll but not the read after it.
 *
 * What is applied is only what changed: the farms whose rendered rules
 * differ from the last set this node applied (the same per-farm hashes as
 * the Cluster page's read-back), stopped and removed farms included; the
 * first pass after start applies the whole set, since this process does not
 * know what the kernel holds. Marks come from the database rows, so a synced
 * connection's mark means the same backend on every node.
 */

export type NodeRole = "master" | "backup" | "fault" | "stopped" | "unknown";

/** keepalived's last announced state on this node (lib/cluster/notify.ts writes it), as a role. */
export function nodeRole(runDir: string): NodeRole {
  const s = readNodeState(runDir);
  if (!s) return "unknown";
  return s.state === "stop" ? "stopped" : s.state;
}

/** Which cluster node this installation is: from NATFARM_CLUSTER_NODE and its runtime directory. */
export interface ClusterNodeSetting {
  id: number;
  /** the node's runtime directory (node.json, state.json: lib/cluster/runtime.ts) */
  runDir: string;
  /** the cluster lab the node belongs to (NATFARM_CLUSTER=lab:<name>), whose agent op reloads its keepalived */
  lab?: string;
}

const NodeIdValue = z.coerce
  .number({ error: "NATFARM_CLUSTER_NODE must be a node id (1..8)" })
  .int({ error: "NATFARM_CLUSTER_NODE must be a whole number (1..8)" })
  .min(1, { error: "NATFARM_CLUSTER_NODE must be 1..8" })
  .max(8, { error: "NATFARM_CLUSTER_NODE must be 1..8" });

export class ClusterNodeSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterNodeSettingError";
  }
}

/**
 * null: this installation is no cluster node (a single balancer). A lab node's
 * runtime directory is found from NATFARM_CLUSTER=lab:<name> (the lab's state
 * directory, as lib/lab lays it out); NATFARM_CLUSTER_RUN_DIR names it directly.
 */
export function clusterNodeSetting(env: Record<string, string | undefined> = process.env): ClusterNodeSetting | null {
  const raw = env.NATFARM_CLUSTER_NODE?.trim();
  if (!raw || raw === "none") return null;
  const id = NodeIdValue.safeParse(raw);
  if (!id.success) throw new ClusterNodeSettingError(`${id.error.issues.map((i) => i.message).join("; ")}, got ${JSON.stringify(raw)}`);
  const given = env.NATFARM_CLUSTER_RUN_DIR?.trim();
  const lab = /^lab:([a-z0-9]{1,12})$/.exec(env.NATFARM_CLUSTER?.trim() ?? "");
  if (given) return { id: id.data, runDir: path.resolve(given), ...(lab ? { lab: lab[1]! } : {}) };
  if (!lab) throw new ClusterNodeSettingError("NATFARM_CLUSTER_NODE needs NATFARM_CLUSTER=lab:<name> (or NATFARM_CLUSTER_RUN_DIR, the node's runtime directory)");
  return { id: id.data, runDir: path.join(env.NATFARM_LAB_STATE_DIR || "/run/natfarm-lab", lab[1]!, `n${id.data}`), lab: lab[1]! };
}

export interface SyncOutcome {
  revision: number;
  /** keepalived's configuration was rewritten (and reloaded) this pass */
  keepalived?: boolean;
  /** farms applied this pass ("*": the whole set), [] when nothing needed applying */
  applied: string[] | "*";
  version: string;
  ms: number;
}

export interface NodeSyncDeps {
  db: PrismaClient;
  kernel: KernelPort;
  target: Target;
  node: { name: string; cluster: string };
  role: () => NodeRole;
  pollMs?: number;
  heartbeatMs?: number;
  /** after a failed apply, the next attempt waits this long */
  retryMs?: number;
  /**
   * A whole-set apply this often even when no revision moved (30 s): another
   * writer's apply to this node's kernel with rows read just before a newer
   * change (this node's console, applying its own edit of the same farm) can
   * land after this loop applied the newer one. The applier writes nothing
   * when the kernel is in step.
   */
  resyncMs?: number;
  /**
   * Brings this node's keepalived to the farms' VIPs (through the node's
   * agent: the configuration is root's, and so is the reload). Called after a
   * pass's kernel apply whenever the VIP set differs from the one last given,
   * and on the first pass; the agent reloads only when the rendered text
   * changed. Absent: the node floats no farm VIP of its own accord.
   */
  keepalived?: (farms: { name: string; vip: string; mode: "nat" | "dnat" }[]) => Promise<{ changed: boolean; reloaded: boolean }>;
  onApplied?: (o: SyncOutcome) => void;
  onError?: (e: unknown) => void;
}

export function createNodeSync(deps: NodeSyncDeps) {
  const { db } = deps;
  const farmSet = createFarmSetCache(db);
  let applied: { revision: number; hashes: FarmHashes } | null = null;
  // The cache keeps an unchanged farm's row object: its rules are rendered and hashed once, not on every change of another farm.
  const hashOf = new WeakMap<FarmRow, string | null>();
  const hashRow = (row: FarmRow) => {
    let h = hashOf.get(row);
    if (h === undefined) hashOf.set(row, (h = desiredFarmHash(rowToResolved(row))));
    return h;
  };
  let retryAt = 0;
  let beatAt = 0;
  let wholeAt = 0;
  // The VIP set last given to keepalived (null: not yet, or its last attempt failed).
  let floated: string | null = null;

  const record = (data: { appliedRevision?: number; appliedVersion?: string; appliedAt?: Date; applyError?: string | null }) => {
    const row = { cluster: deps.node.cluster, role: deps.role(), lastSeen: new Date(), ...data };
    beatAt = Date.now();
    return db.clusterNode.upsert({ where: { name: deps.node.name }, create: { name: deps.node.name, ...row }, update: row });
  };

  async function revision(): Promise<number> {
    const r = await db.farmRevision.findUnique({ where: { id: 1 } });
    if (!r) throw new Error("the database has no FarmRevision row: run its migrations (npm run db:migrate)");
    return r.revision;
  }

  /** One pass: applies what changed since the last applied revision; null when nothing was due. */
  async function step(now = Date.now()): Promise<SyncOutcome | null> {
    const rev = await revision();
    const resync = applied !== null && now - wholeAt >= (deps.resyncMs ?? 30_000);
    if (resync) applied = null;
    if ((applied && applied.revision === rev && (floated !== null || !deps.keepalived)) || now < retryAt) {
      if (now - beatAt >= (deps.heartbeatMs ?? 2_000)) await record({});
      return null;
    }
    const t0 = performance.now();
    // Read after the revision: rows newer than it are applied too and seen again at the next revision, never missed.
    const rows = await farmSet.rows();
    const hashes: FarmHashes = {};
    for (const row of rows) {
      const h = hashRow(row);
      if (h !== null) hashes[row.name] = h;
    }
    const version = setVersion(hashes);
    let only: string[] | undefined;
    if (applied) {
      const before = applied.hashes;
      only = [...new Set([...Object.keys(hashes), ...Object.keys(before)])].filter((f) => hashes[f] !== before[f]).sort();
    }
    try {
      if (!only || only.length) await deps.kernel.applyFarms(rows.map(farmSet.input), { target: deps.target, ...(only ? { only } : {}) });
    } catch (e) {
      retryAt = now + (deps.retryMs ?? 1_000);
      const message = e instanceof Error ? e.message : String(e);
      await record({ applyError: message.slice(0, 2_000) }).catch(() => {});
      throw e;
    }
    applied = { revision: rev, hashes };
    if (!only) wholeAt = now;
    let keepalivedChanged: boolean | undefined;
    if (deps.keepalived) {
      // Every farm's VIP floats, stopped ones too: a farm started on any node must find its VIP already on the master.
      const vips = rows.map((r) => ({ name: r.name, vip: r.vip, mode: r.mode as "nat" | "dnat" })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const key = JSON.stringify(vips);
      if (key !== floated) {
        floated = null;
        try {
          keepalivedChanged = (await deps.keepalived(vips)).changed;
          floated = key;
        } catch (e) {
          retryAt = now + (deps.retryMs ?? 1_000);
          const message = `keepalived: ${e instanceof Error ? e.message : String(e)}`;
          await record({ appliedRevision: rev, appliedVersion: version, appliedAt: new Date(), applyError: message.slice(0, 2_000) }).catch(() => {});
          throw e;
        }
      }
    }
    retryAt = 0;
    await record({ appliedRevision: rev, appliedVersion: version, appliedAt: new Date(), applyError: null });
    const outcome: SyncOutcome = { revision: rev, applied: only ?? "*", version, ms: Math.round(performance.now() - t0), ...(keepalivedChanged !== undefined ? { keepalived: keepalivedChanged } : {}) };
    deps.onApplied?.(outcome);
    return outcome;
  }

  return {
    step,
    /** Polls every `pollMs` (200 ms) until the signal aborts. */
    async run(signal: AbortSignal): Promise<void> {
      while (!signal.aborted) {
        try {
          await step();
        } catch (e) {
          deps.onError?.(e);
        }
        await new Promise((r) => setTimeout(r, deps.pollMs ?? 200));
      }
    },
  };
}

/** The node's name and cluster as its runtime directory records them (node.json, written when the node is set up). */
export async function clusterNodeIdentity(setting: ClusterNodeSetting): Promise<{ name: string; cluster: string }> {
  const n = await readNodeRuntime(setting.runDir);
  if (n.nodeId !== setting.id) throw new ClusterNodeSettingError(`${setting.runDir} is node ${n.nodeId}'s runtime directory, not node ${setting.id}'s`);
  return { name: n.nodeName, cluster: n.cluster };
}

/** The per-node records, for the Cluster page (lib/service/cluster.ts). */
export async function loadClusterNodes(db: PrismaClient) {
  return db.clusterNode.findMany({ orderBy: { name: "asc" } });
}
