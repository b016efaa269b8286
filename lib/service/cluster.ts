import { z } from "zod";
import { compareApplied, desiredFarmHashes, setVersion, type AppliedComparison } from "../cluster/applied.ts";
import { formatClusterStatus, type ClusterStatus, type NodeStatus, type Problem, type Severity } from "../cluster/status.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import type { KernelPort } from "../kernel/index.ts";
import type { ClusterReading, MaintenanceResult } from "../lab/cluster-console.ts";

/**
 * The cluster as the console's Cluster page, its poll (/api/cluster), its
 * maintenance actions and `natfarm cluster status` all see it: one service,
 * so the page and the CLI never disagree. The reading comes from the kernel
 * port (the agent's `cluster.status` for the unprivileged console); the
 * desired farm set from the caller (the database's farms); the judgement
 * from the status model (lib/cluster/status.ts), with two additions made
 * here because they need the desired set or the operator's intent:
 * a node in maintenance is in FAULT by choice, and a node whose kernel does
 * not hold the desired farm set is a warning.
 */

/**
 * Which cluster this installation belongs to: NATFARM_CLUSTER=lab:<name> (a
 * cluster lab, `natfarm lab up --name <name> --cluster 2`), or unset/none: a
 * single node. A real node's own reader comes with the shared database.
 */
export type ClusterSetting = { kind: "none" } | { kind: "lab"; name: string };

const ClusterValue = z
  .string()
  .trim()
  .transform((v, ctx): ClusterSetting => {
    if (v === "" || v === "none") return { kind: "none" };
    const lab = /^lab:(.*)$/.exec(v);
    // The lab's own name rule (lib/lab/names.ts); the agent checks it again.
    if (lab && /^[a-z0-9]{1,12}$/.test(lab[1]!)) return { kind: "lab", name: lab[1]! };
    ctx.addIssue({ code: "custom", message: `NATFARM_CLUSTER must be "lab:<name>" (a cluster lab's name, 1-12 characters [a-z0-9]) or "none", got ${JSON.stringify(v)}` });
    return z.NEVER;
  });

export class ClusterSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterSettingError";
  }
}

export function clusterSetting(env: Record<string, string | undefined> = process.env): ClusterSetting {
  const r = ClusterValue.safeParse(env.NATFARM_CLUSTER ?? "");
  if (!r.success) throw new ClusterSettingError(r.error.issues.map((i) => i.message).join("; "));
  return r.data;
}

export const NO_CLUSTER_MESSAGE =
  "No cluster is configured: this console runs a single node. Set NATFARM_CLUSTER=lab:<name> for a cluster lab (natfarm lab up --name <name> --cluster 2).";

/** What a node's sync loop recorded in the shared database (ClusterNode; lib/cluster/node-sync.ts). */
export interface NodeRecord {
  name: string;
  role: string;
  appliedRevision: number | null;
  appliedVersion: string | null;
  appliedAt: Date | string | null;
  applyError: string | null;
  lastSeen: Date | string;
}

export interface NodeView extends NodeStatus {
  maintenance: boolean;
  /**
   * The node's own record of what it applied (null: no sync loop on that node
   * has written one). Beside the read-back: the record says what the node
   * meant to apply and when, the kernel what it holds.
   */
  record:
    | (Omit<NodeRecord, "name" | "appliedAt" | "lastSeen"> & {
        appliedAt: string | null;
        lastSeen: string;
        current: boolean | null;
        /** how long before the observation the node last reported (ms; its clock against the reader's) */
        lastSeenAgoMs: number;
        /** the node has not reported for RECORD_STALE_MS: its role and version are what it said then, not now */
        stale: boolean;
      })
    | null;
  applied: {
    /** Version of the farm set the node's kernel holds (read back from it), null when unreadable. */
    version: string | null;
    /** Compared with the desired set; null when there is no desired set to compare with. */
    comparison: AppliedComparison | null;
    error?: string;
  };
}

export interface ViewProblem extends Omit<Problem, "code"> {
  code: Problem["code"] | "maintenance" | "config-differs" | "sync-failed" | "record-stale";
}

/**
 * A node's sync loop writes its record every 2 s (the heartbeat) and after
 * every apply: five heartbeats missed and the node is shown stale (its
 * checker, which runs the loop, is down, or the node lost the database).
 * Generous against clock skew between nodes, which the comparison includes.
 */
export const RECORD_STALE_MS = 10_000;

export type ClusterView =
  | { configured: false; message: string }
  | {
      configured: true;
      /** The lab (or node set) it was read from. */
      source: string;
      cluster: string;
      severity: Severity;
      master: string | null;
      masters: string[];
      floating: string[];
      /** The desired farm set's version, or null when the caller has none (the CLI without a database). */
      desired: { version: string; farms: number } | null;
      /** whether the nodes' records (ClusterNode) were read: false without a database */
      recordsRead: boolean;
      nodes: NodeView[];
      problems: ViewProblem[];
      observedAt: string;
    };

/** The reading, the desired set and the judgement combined (pure: the unit of the page and the CLI). */
export function clusterView(source: string, reading: ClusterReading, desired: readonly ResolvedFarm[] | null, records: readonly NodeRecord[] | null = null): Extract<ClusterView, { configured: true }> {
  const s: ClusterStatus = reading.status;
  const desiredHashes = desired ? desiredFarmHashes(desired) : null;
  const desiredVersion = desiredHashes ? setVersion(desiredHashes) : null;
  const extra = new Map(reading.nodes.map((n) => [n.id, n]));
  const recorded = new Map((records ?? []).map((r) => [r.name, r]));
  const iso = (d: Date | string) => (typeof d === "string" ? d : d.toISOString());
  const observed = Date.parse(s.observedAt);
  const nodes: NodeView[] = s.nodes.map((n) => {
    const x = extra.get(n.id);
    const applied = x?.applied ?? { version: null, farms: {}, error: "not read" };
    const r = recorded.get(n.name);
    return {
      ...n,
      maintenance: x?.maintenance ?? false,
      record: r
        ? {
            role: r.role,
            appliedRevision: r.appliedRevision,
            appliedVersion: r.appliedVersion,
            appliedAt: r.appliedAt === null ? null : iso(r.appliedAt),
            applyError: r.applyError,
            lastSeen: iso(r.lastSeen),
            current: desiredVersion === null ? null : r.appliedVersion === desiredVersion,
            lastSeenAgoMs: Math.max(0, observed - Date.parse(iso(r.lastSeen))),
            stale: observed - Date.parse(iso(r.lastSeen)) > RECORD_STALE_MS,
          }
        : null,
      applied: {
        version: applied.version,
        comparison: desiredHashes && applied.version !== null ? compareApplied(desiredHashes, applied.farms) : null,
        ...(applied.error ? { error: applied.error } : {}),
      },
    };
  });
  const inMaintenance = new Set(nodes.filter((n) => n.maintenance).map((n) => n.name));
  const problems: ViewProblem[] = s.problems.map((p) => {
    if (p.code === "fault" && p.nodes.length === 1 && inMaintenance.has(p.nodes[0]!)) {
      return { ...p, code: "maintenance", message: `${p.nodes[0]} is in maintenance (FAULT by an operator's choice): it holds no address and cannot take over until it is back in service` };
    }
    return p;
  });
  for (const n of nodes) {
    const c = n.applied.comparison;
    if (c && !c.matches) {
      const parts = [c.missing.length ? `missing ${c.missing.join(", ")}` : "", c.differs.length ? `different rules for ${c.differs.join(", ")}` : "", c.extra.length ? `farms not in the desired set: ${c.extra.join(", ")}` : ""].filter(Boolean);
      problems.push({ severity: "warning", code: "config-differs", message: `${n.name}'s kernel does not hold the desired farm set (${parts.join("; ")})`, nodes: [n.name] });
    } else if (n.reachable && n.applied.version === null) {
      problems.push({ severity: "warning", code: "config-differs", message: `${n.name}'s rules could not be read: ${n.applied.error ?? "unknown error"}`, nodes: [n.name] });
    }
  }
  for (const n of nodes) {
    if (n.record?.stale) {
      problems.push({
        severity: "warning",
        code: "record-stale",
        message: `${n.name} has not reported for ${Math.round(n.record.lastSeenAgoMs / 1000)} s (last seen ${n.record.lastSeen}): its health checker, which keeps its kernel at the shared farms, is not running or cannot reach the database`,
        nodes: [n.name],
      });
    }
    if (n.record?.applyError) problems.push({ severity: "warning", code: "sync-failed", message: `${n.name} could not apply the shared farms: ${n.record.applyError}`, nodes: [n.name] });
  }
  const severity: Severity = problems.some((p) => p.severity === "critical") ? "critical" : problems.length ? "warning" : "ok";
  return {
    configured: true,
    source,
    cluster: s.cluster,
    severity,
    master: s.master,
    masters: s.masters,
    floating: s.floating,
    desired: desiredHashes ? { version: desiredVersion!, farms: Object.keys(desiredHashes).length } : null,
    recordsRead: records !== null,
    nodes,
    problems,
    observedAt: s.observedAt,
  };
}

export interface ClusterDeps {
  setting: ClusterSetting;
  kernel: KernelPort;
  /** The desired farm set (the database's farms), or null when there is none to compare with. */
  desired: () => Promise<readonly ResolvedFarm[] | null>;
  /** The nodes' records of what they applied (the shared database's ClusterNode rows); none when absent. */
  records?: () => Promise<readonly NodeRecord[]>;
}

function clusterPort(k: KernelPort) {
  if (!k.cluster) throw new Error("this kernel port has no cluster operations");
  return k.cluster;
}

export async function clusterOverview(deps: ClusterDeps): Promise<ClusterView> {
  if (deps.setting.kind === "none") return { configured: false, message: NO_CLUSTER_MESSAGE };
  const [reading, desired, records] = await Promise.all([clusterPort(deps.kernel).status({ name: deps.setting.name }), deps.desired(), deps.records ? deps.records() : null]);
  return clusterView(`lab ${deps.setting.name}`, reading, desired, records);
}

/** A maintenance request as forms and the CLI send it: which node, on or off. */
export const MaintenanceInput = z.object({
  node: z.coerce
    .number({ error: "node must be a node id (a number)" })
    .int({ error: "node must be a whole number" })
    .min(1, { error: "node must be 1..8" })
    .max(8, { error: "node must be 1..8" }),
  mode: z.enum(["on", "off"], { error: (iss) => `mode must be "on" (into maintenance) or "off" (back in service), got ${JSON.stringify(iss.input)}` }),
});
export type MaintenanceRequest = z.output<typeof MaintenanceInput>;

export class NoClusterError extends Error {
  constructor() {
    super(NO_CLUSTER_MESSAGE);
    this.name = "NoClusterError";
  }
}

export async function setNodeMaintenance(deps: Omit<ClusterDeps, "desired">, req: MaintenanceRequest): Promise<MaintenanceResult> {
  if (deps.setting.kind === "none") throw new NoClusterError();
  return clusterPort(deps.kernel).maintenance({ name: deps.setting.name, node: req.node, on: req.mode === "on" });
}

/** The text form of `natfarm cluster status`: the status model's, then what this service adds per node. */
export function formatClusterView(v: ClusterView): string {
  if (!v.configured) return v.message;
  const status: ClusterStatus = { ...v, problems: v.problems as Problem[] };
  const lines = formatClusterStatus(status).split("\n");
  // formatClusterStatus prints the status model's problems after the nodes; ours replace them.
  const head = lines.slice(0, 1 + v.nodes.length);
  const out = [...head];
  out.push(`  desired farm set: ${v.desired ? `version ${v.desired.version} (${v.desired.farms} farm(s) with rules)` : "not compared (no database: set NATFARM_DATABASE_URL)"}`);
  for (const n of v.nodes) {
    const c = n.applied.comparison;
    const cmp = c === null ? "" : c.matches ? ", the desired set" : ", DIFFERS from the desired set";
    out.push(`  ${n.name.padEnd(8)} applied ${n.applied.version ?? `? (${n.applied.error ?? "unread"})`}${cmp}${n.maintenance ? "  IN MAINTENANCE" : ""}`);
    // The sync link's own counters (traffic on it, messages lost or malformed), beside the caches' sizes in the line above.
    const sync = Object.entries(n.conntrackd.stats?.counters ?? {}).filter(([k]) => /traffic \(|^message tracking|^(UDP|multicast) traffic/i.test(k));
    if (sync.length) out.push(`  ${"".padEnd(8)} sync: ${sync.map(([k, x]) => `${k} ${x}`).join(", ")}`);
    const r = n.record;
    if (r)
      out.push(
        `  ${"".padEnd(8)} recorded: ${r.role}, revision ${r.appliedRevision ?? "-"}, version ${r.appliedVersion ?? "-"}${r.current === true ? " (current)" : r.current === false ? " (behind)" : ""} at ${r.appliedAt ?? "-"}, seen ${r.lastSeen}${r.stale ? ` STALE (${Math.round(r.lastSeenAgoMs / 1000)} s ago)` : ""}${r.applyError ? `, last apply FAILED: ${r.applyError}` : ""}`,
      );
    else out.push(`  ${"".padEnd(8)} recorded: nothing (no sync loop on this node has written a record${v.recordsRead ? "" : "; records not read: no database"})`);
  }
  for (const p of v.problems) out.push(`  ${p.severity === "critical" ? "CRITICAL" : "warning"}: ${p.message}`);
  return out.join("\n");
}
