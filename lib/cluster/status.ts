import { z } from "zod";
import { VRRP_STATES } from "./transitions.ts";

/**
 * The cluster's health from what each node shows (pure): one model for
 * `natfarm cluster status [--json]` and the console's Cluster page. The
 * readers (lab.ts for the lab; a node's own reader later) only observe; every
 * judgement — roles, split brain, what is critical — is made here, from:
 *
 * - keepalived's last announced state (the notify command's state file),
 * - the floating addresses the node actually holds (the ground truth of who
 *   answers: a keepalived killed with -9 leaves its addresses behind),
 * - its links, and conntrackd's counters.
 */

export const ROLES = ["master", "backup", "fault", "stopped", "unknown"] as const;
export type Role = (typeof ROLES)[number];
export const SEVERITIES = ["ok", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ConntrackdCountersSchema = z.object({
  /** Entries of this node's own connections (the kernel's table, as conntrackd tracks it). */
  internal: z.number().nullable(),
  /** Entries received from the peers, ready to be committed on takeover. */
  external: z.number().nullable(),
  /** Everything `conntrackd -s` printed, as "section: name" -> number. */
  counters: z.record(z.string(), z.number()),
});
export type ConntrackdCounters = z.infer<typeof ConntrackdCountersSchema>;

export const NodeObservationSchema = z.object({
  id: z.number(),
  name: z.string(),
  /** The node could be observed at all (its namespace or host answered). */
  reachable: z.boolean(),
  keepalivedRunning: z.boolean(),
  /** keepalived's last announced state and when. */
  vrrpState: z.enum(VRRP_STATES).nullable(),
  vrrpSince: z.string().nullable(),
  /** conntrackd's steps for that state are done (committed, resync requested). */
  transitionDone: z.boolean(),
  /** Floating addresses (gateways, VIPs) present on the node now. */
  holds: z.array(z.string()),
  /** Operational state of the node's cluster interfaces: name -> up/down. */
  links: z.record(z.string(), z.enum(["up", "down", "missing"])),
  conntrackd: z.object({ enabled: z.boolean(), running: z.boolean(), stats: ConntrackdCountersSchema.nullable() }),
  /** The farm configuration version this node applied (issue 12, item 2; null until nodes record it). */
  appliedVersion: z.string().nullable().default(null),
});
export type NodeObservation = z.input<typeof NodeObservationSchema>;

export interface Problem {
  severity: Exclude<Severity, "ok">;
  code: "split-brain" | "no-master" | "master-incomplete" | "fault" | "keepalived-down" | "unreachable" | "orphan-addresses" | "conntrackd-down" | "no-standby" | "transition-pending";
  message: string;
  nodes: string[];
}

export interface NodeStatus extends z.output<typeof NodeObservationSchema> {
  role: Role;
  /** Floating addresses the cluster has that this node, if master, lacks. */
  missing: string[];
}

export interface ClusterStatus {
  cluster: string;
  severity: Severity;
  /** The one master, or null (none, or more than one: see problems). */
  master: string | null;
  /** Every node acting as master: claims it, or holds floating addresses. */
  masters: string[];
  /** All floating addresses of the cluster (gateways and farm VIPs). */
  floating: string[];
  nodes: NodeStatus[];
  problems: Problem[];
  observedAt: string;
}

function roleOf(n: z.output<typeof NodeObservationSchema>): Role {
  if (!n.reachable) return "unknown";
  if (!n.keepalivedRunning) return "stopped";
  if (n.vrrpState === null) return "unknown";
  return n.vrrpState === "stop" ? "stopped" : n.vrrpState;
}

export function clusterStatus(input: { cluster: string; floating: readonly string[]; nodes: readonly NodeObservation[]; observedAt?: Date }): ClusterStatus {
  const floating = [...input.floating];
  const problems: Problem[] = [];
  const nodes: NodeStatus[] = input.nodes.map((raw) => {
    const n = NodeObservationSchema.parse(raw);
    const role = roleOf(n);
    return { ...n, role, missing: role === "master" ? floating.filter((a) => !n.holds.includes(a)) : [] };
  });
  const add = (severity: Problem["severity"], code: Problem["code"], message: string, who: NodeStatus[]) =>
    problems.push({ severity, code, message, nodes: who.map((n) => n.name) });
  const names = (list: NodeStatus[]) => list.map((n) => n.name).join(" and ");

  const masters = nodes.filter((n) => n.role === "master" || n.holds.length > 0);
  if (masters.length > 1) {
    const syncDown = masters.filter((n) => n.links && Object.values(n.links).every((s) => s === "up"));
    add(
      "critical",
      "split-brain",
      `split brain: ${names(masters)} both act as master (${masters.map((n) => `${n.name} ${n.role === "master" ? "claims it" : "does not claim it"} and holds ${n.holds.length} floating address(es)`).join("; ")})` +
        (syncDown.length === masters.length ? ": every link is up on both, so they cannot hear each other's adverts — the VRRP (sync) link between them is cut" : ""),
      masters,
    );
  } else if (masters.length === 0) {
    add("critical", "no-master", "no node is master: the VIPs answer nowhere", nodes);
  }
  for (const n of nodes) {
    if (!n.reachable) {
      add("warning", "unreachable", `${n.name} cannot be observed`, [n]);
      continue;
    }
    if (n.role === "master" && n.missing.length) add("warning", "master-incomplete", `${n.name} is master but lacks ${n.missing.join(", ")}`, [n]);
    if (n.role === "fault") {
      const down = Object.entries(n.links).filter(([, s]) => s !== "up").map(([l, s]) => `${l} ${s}`);
      add("warning", "fault", `${n.name} is in FAULT${down.length ? ` (${down.join(", ")})` : ""}: it cannot take over`, [n]);
    }
    if (!n.keepalivedRunning) {
      if (n.holds.length) add("critical", "orphan-addresses", `${n.name} holds ${n.holds.join(", ")} with no keepalived running: nothing will release them`, [n]);
      else add("warning", "keepalived-down", `keepalived is not running on ${n.name}: it cannot take over`, [n]);
    }
    if (n.conntrackd.enabled && !n.conntrackd.running) {
      add("warning", "conntrackd-down", `conntrackd is not running on ${n.name}: ${n.role === "master" ? "its connections are not synced" : "it has no copy of the master's connections"}, so established connections would be lost on a failover`, [n]);
    }
    if ((n.role === "master" || n.role === "backup") && !n.transitionDone && n.conntrackd.enabled) {
      add("warning", "transition-pending", `${n.name} became ${n.role} at ${n.vrrpSince} and its conntrackd steps have not finished`, [n]);
    }
  }
  const standbys = nodes.filter((n) => n.role === "backup");
  if (masters.length === 1 && standbys.length === 0) add("warning", "no-standby", `no node stands by: if ${masters[0]!.name} fails, nothing takes over`, masters);

  const severity: Severity = problems.some((p) => p.severity === "critical") ? "critical" : problems.length ? "warning" : "ok";
  return {
    cluster: input.cluster,
    severity,
    master: masters.length === 1 ? masters[0]!.name : null,
    masters: masters.map((n) => n.name),
    floating,
    nodes,
    problems,
    observedAt: (input.observedAt ?? new Date()).toISOString(),
  };
}

/**
 * `conntrackd -s` output as numbers: the section header ("cache internal:",
 * "traffic processed:", …) then lines "  current active connections:  4".
 */
export function parseConntrackdStats(text: string): ConntrackdCounters {
  const counters: Record<string, number> = {};
  let section = "";
  for (const line of text.split("\n")) {
    const header = /^(\S[^:]*):\s*$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    // "connections created:		 60	failed:	 0"
    const pair = /^([A-Za-z][^:\t]*):\s+(\d+)(?:\s+failed:\s+(\d+))?/.exec(line);
    if (pair) {
      counters[`${section}: ${pair[1]!.trim()}`] = Number(pair[2]);
      if (pair[3] !== undefined) counters[`${section}: ${pair[1]!.trim()} failed`] = Number(pair[3]);
      continue;
    }
    // "   13572 Bytes sent     400 Bytes recv", "   0 Malformed msgs", "   0 Bytes    0 Pckts"
    for (const m of line.matchAll(/(\d+)\s+([A-Z][a-z]+)(?:\s+(sent|recv|msgs))?/g)) counters[`${section}: ${m[2]!.toLowerCase()}${m[3] && m[3] !== "msgs" ? ` ${m[3]}` : ""}`] = Number(m[1]);
  }
  const pick = (s: string) => counters[`${s}: current active connections`] ?? null;
  return { internal: pick("cache internal"), external: pick("cache external"), counters };
}

/** The text form of `natfarm cluster status`. */
export function formatClusterStatus(s: ClusterStatus): string {
  const lines = [`cluster ${s.cluster}: ${s.severity.toUpperCase()}${s.master ? `, master ${s.master}` : s.masters.length > 1 ? `, masters ${s.masters.join(", ")}` : ", no master"}`];
  for (const n of s.nodes) {
    const links = Object.entries(n.links).map(([l, st]) => `${l} ${st}`).join(", ");
    const ct = !n.conntrackd.enabled
      ? "conntrackd off"
      : !n.conntrackd.running
        ? "conntrackd NOT RUNNING"
        : `conntrackd internal ${n.conntrackd.stats?.internal ?? "?"}, external ${n.conntrackd.stats?.external ?? "?"}`;
    lines.push(`  ${n.name.padEnd(8)} ${n.role.toUpperCase().padEnd(7)} since ${n.vrrpSince ?? "-"}  holds ${n.holds.length} address(es)  ${ct}  links: ${links || "-"}`);
  }
  for (const p of s.problems) lines.push(`  ${p.severity === "critical" ? "CRITICAL" : "warning"}: ${p.message}`);
  return lines.join("\n");
}
