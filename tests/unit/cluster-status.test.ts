import { describe, expect, it } from "vitest";
import { clusterStatus, formatClusterStatus, parseConntrackdStats, type NodeObservation } from "../../lib/cluster/status.ts";

/** The status model `natfarm cluster status` and the console's Cluster page share: roles, split brain, what is critical. */
const FLOATING = ["198.51.100.1", "203.0.113.1", "198.51.100.250"];
const UP = { cli0: "up", bk0: "up", sync0: "up" } as const;
const stats = (internal: number, external: number) => ({ internal, external, counters: {} });

function node(name: string, over: Partial<NodeObservation> = {}): NodeObservation {
  return {
    id: Number(name.slice(1)),
    name,
    reachable: true,
    keepalivedRunning: true,
    vrrpState: "backup",
    vrrpSince: "2026-12-01T12:00:00.000Z",
    transitionDone: true,
    holds: [],
    links: { ...UP },
    conntrackd: { enabled: true, running: true, stats: stats(0, 40) },
    ...over,
  };
}
const master = (name: string, over: Partial<NodeObservation> = {}) => node(name, { vrrpState: "master", holds: [...FLOATING], conntrackd: { enabled: true, running: true, stats: stats(40, 0) }, ...over });
const status = (...nodes: NodeObservation[]) => clusterStatus({ cluster: "edge", floating: FLOATING, nodes, observedAt: new Date("2026-12-01T12:00:05Z") });

describe("cluster status", () => {
  it("one master holding every floating address and a synced backup: ok", () => {
    const s = status(master("n1"), node("n2"));
    expect(s).toMatchObject({ severity: "ok", master: "n1", masters: ["n1"], problems: [] });
    expect(s.nodes.map((n) => n.role)).toEqual(["master", "backup"]);
  });

  it("split brain (both claim master and hold the addresses, every link up): critical, naming the cut sync link", () => {
    const s = status(master("n1"), master("n2"));
    expect(s.severity).toBe("critical");
    expect(s.master).toBeNull();
    expect(s.masters).toEqual(["n1", "n2"]);
    expect(s.problems[0]).toMatchObject({ severity: "critical", code: "split-brain", nodes: ["n1", "n2"] });
    expect(s.problems[0]!.message).toMatch(/the VRRP \(sync\) link between them is cut/);
  });

  it("a node holding addresses without claiming master still counts: two nodes answering is split brain", () => {
    const s = status(master("n1"), node("n2", { holds: ["198.51.100.250"] }));
    expect(s.problems.map((p) => p.code)).toContain("split-brain");
  });

  it("no master: critical", () => {
    const s = status(node("n1"), node("n2"));
    expect(s.severity).toBe("critical");
    expect(s.problems.map((p) => p.code)).toEqual(["no-master"]);
  });

  it("the old master in FAULT with its links down: a warning (no standby), not critical", () => {
    const s = status(node("n1", { vrrpState: "fault", links: { cli0: "down", bk0: "down", sync0: "down" } }), master("n2"));
    expect(s.severity).toBe("warning");
    expect(s.master).toBe("n2");
    expect(s.problems.map((p) => p.code)).toEqual(["fault", "no-standby"]);
    expect(s.problems[0]!.message).toMatch(/n1 is in FAULT \(cli0 down, bk0 down, sync0 down\)/);
  });

  it("keepalived killed with -9 on a node that still holds the addresses: critical (nothing will release them)", () => {
    const s = status(master("n1", { keepalivedRunning: false }), master("n2"));
    expect(s.severity).toBe("critical");
    expect(s.nodes[0]!.role).toBe("stopped");
    expect(s.problems.map((p) => p.code)).toEqual(expect.arrayContaining(["split-brain", "orphan-addresses"]));
  });

  it("conntrackd down on the backup: a warning that established connections would be lost", () => {
    const s = status(master("n1"), node("n2", { conntrackd: { enabled: true, running: false, stats: null } }));
    expect(s.severity).toBe("warning");
    expect(s.problems[0]).toMatchObject({ code: "conntrackd-down", nodes: ["n2"] });
    expect(s.problems[0]!.message).toMatch(/established connections would be lost on a failover/);
  });

  it("a master lacking one of the addresses, a transition still running: warnings", () => {
    const s = status(master("n1", { holds: ["198.51.100.1", "203.0.113.1"], transitionDone: false }), node("n2"));
    expect(s.problems.map((p) => p.code)).toEqual(["master-incomplete", "transition-pending"]);
    expect(s.nodes[0]!.missing).toEqual(["198.51.100.250"]);
  });

  it("an unreachable node is unknown, and the text form says it all", () => {
    const s = status(master("n1"), node("n2", { reachable: false, keepalivedRunning: false, conntrackd: { enabled: true, running: false, stats: null } }));
    expect(s.nodes[1]!.role).toBe("unknown");
    expect(s.problems.map((p) => p.code)).toEqual(["unreachable", "no-standby"]);
    const text = formatClusterStatus(status(master("n1"), master("n2")));
    expect(text).toMatch(/^cluster edge: CRITICAL, masters n1, n2$/m);
    expect(text).toMatch(/CRITICAL: split brain/);
  });

  it("bad observations are refused, not judged", () => {
    expect(() => status(node("n1", { vrrpState: "primary" as never }))).toThrow();
  });
});

describe("conntrackd -s", () => {
  // Printed by conntrackd 1.4.7 (Debian 12) on a lab backup after a sync.
  const OUTPUT = [
    "cache internal:",
    "current active connections:\t           0",
    "connections created:\t\t           0\tfailed:\t           0",
    "connections updated:\t\t           0\tfailed:\t           0",
    "connections destroyed:\t\t           0\tfailed:\t           0",
    "",
    "cache external:",
    "current active connections:\t          60",
    "connections created:\t\t          60\tfailed:\t           0",
    "connections updated:\t\t         107\tfailed:\t           0",
    "connections destroyed:\t\t           0\tfailed:\t           0",
    "",
    "traffic processed:",
    "                   0 Bytes                         0 Pckts",
    "",
    "UDP traffic (active device=sync0):",
    "                 400 Bytes sent                13572 Bytes recv",
    "                  25 Pckts sent                  182 Pckts recv",
    "                   0 Error send                    0 Error recv",
    "",
    "message tracking:",
    "                   0 Malformed msgs                    0 Lost msgs",
    "",
  ].join("\n");

  it("reads both caches and every counter", () => {
    const s = parseConntrackdStats(OUTPUT);
    expect(s.internal).toBe(0);
    expect(s.external).toBe(60);
    expect(s.counters).toMatchObject({
      "cache external: connections updated": 107,
      "cache external: connections created failed": 0,
      "UDP traffic (active device=sync0): bytes recv": 13572,
      "UDP traffic (active device=sync0): pckts sent": 25,
      "message tracking: lost": 0,
    });
  });

  it("no output: no numbers", () => {
    expect(parseConntrackdStats("")).toEqual({ internal: null, external: null, counters: {} });
  });
});
