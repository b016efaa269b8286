import { describe, expect, it } from "vitest";
import { compareApplied, desiredFarmHashes, liveFarmHashes, setVersion } from "../../lib/cluster/applied.ts";
import { parseClusterConfig } from "../../lib/cluster/config.ts";
import { renderKeepalived } from "../../lib/cluster/keepalived.ts";
import { clusterStatus, type NodeObservation } from "../../lib/cluster/status.ts";
import { validateFarms } from "../../lib/applier/apply.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { renderFarm } from "../../lib/netfilter/render.ts";
import type { ClusterReading } from "../../lib/lab/cluster-console.ts";
import { clusterOverview, clusterSetting, clusterView, formatClusterView, MaintenanceInput, RECORD_STALE_MS } from "../../lib/service/cluster.ts";
import { labFarm } from "../helpers/farms.ts";

/** The cluster service's own judgement (maintenance, the applied farm set) and its boundaries, without a kernel. */
const FLOATING = ["198.51.100.1", "203.0.113.1", "198.51.100.250"];
const UP = { cli0: "up", bk0: "up", sync0: "up" } as const;
const obs = (name: string, over: Partial<NodeObservation> = {}): NodeObservation => ({
  id: Number(name.slice(1)),
  name,
  reachable: true,
  keepalivedRunning: true,
  vrrpState: "backup",
  vrrpSince: "2026-12-01T12:00:00.000Z",
  transitionDone: true,
  holds: [],
  links: { ...UP },
  conntrackd: { enabled: true, running: true, stats: { internal: 0, external: 3, counters: {} } },
  ...over,
});
const desired = resolveMarks(validateFarms([labFarm("web", "198.51.100.250", 80, [1, 1], "nat")]));
/** The rules renderFarm writes, as a kernel would list them back: the same rules in each chain, the chains in another order (a stable sort). */
const asLive = (farms: typeof desired) => farms.flatMap((f) => renderFarm(f).rules.map((r) => ({ ...r, farm: f.name }))).sort((a, b) => `${b.table} ${b.chain}`.localeCompare(`${a.table} ${a.chain}`));

function reading(nodes: NodeObservation[], extra: { maintenance?: boolean; farms?: Record<string, string> }[]): ClusterReading {
  return {
    status: clusterStatus({ cluster: "lab-x", floating: FLOATING, nodes }),
    nodes: nodes.map((n, i) => ({ id: n.id, name: n.name, maintenance: extra[i]?.maintenance ?? false, applied: { version: setVersion(extra[i]?.farms ?? {}), farms: extra[i]?.farms ?? {} } })),
  };
}

describe("cluster service", () => {
  it("NATFARM_CLUSTER: lab:<name> or none; anything else refused by name", () => {
    expect(clusterSetting({})).toEqual({ kind: "none" });
    expect(clusterSetting({ NATFARM_CLUSTER: " none " })).toEqual({ kind: "none" });
    expect(clusterSetting({ NATFARM_CLUSTER: "lab:edge1" })).toEqual({ kind: "lab", name: "edge1" });
    for (const bad of ["edge1", "lab:", "lab:Edge", "lab:a/b", "lab:waytoolongname1"]) expect(() => clusterSetting({ NATFARM_CLUSTER: bad }), bad).toThrow(/NATFARM_CLUSTER must be "lab:<name>"/);
  });

  it("a single node: the page's message, and no kernel asked", async () => {
    const v = await clusterOverview({ setting: { kind: "none" }, kernel: {} as never, desired: async () => null });
    expect(v).toEqual({ configured: false, message: expect.stringMatching(/No cluster is configured: this console runs a single node/) });
    expect(formatClusterView(v)).toMatch(/No cluster is configured/);
  });

  it("maintenance requests: node 1..8 and on|off, nothing else", () => {
    expect(MaintenanceInput.parse({ node: "2", mode: "on" })).toEqual({ node: 2, mode: "on" });
    for (const bad of [{ node: "0", mode: "on" }, { node: "x", mode: "on" }, { node: "1", mode: "yes" }, { node: "1.5", mode: "off" }, {}]) expect(MaintenanceInput.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it("the kernel's rules read back give the desired set's version; another weight, a missing or an extra farm is named", () => {
    const want = desiredFarmHashes(desired);
    const live = liveFarmHashes(asLive(desired));
    expect(live).toEqual(want);
    expect(setVersion(live)).toBe(setVersion(want));
    // Within a chain the order is the meaning (the last MARK wins): reversed rules are another set.
    const reversed = asLive(desired).reverse();
    expect(liveFarmHashes(reversed)).not.toEqual(want);
    const heavier = desired.map((f) => ({ ...f, backends: f.backends.map((b, i) => (i === 0 ? { ...b, weight: 3 } : b)) }));
    expect(compareApplied(want, liveFarmHashes(asLive(heavier)))).toEqual({ matches: false, missing: [], differs: ["web"], extra: [] });
    expect(compareApplied(want, {})).toEqual({ matches: false, missing: ["web"], differs: [], extra: [] });
    expect(compareApplied({}, live)).toEqual({ matches: false, missing: [], differs: [], extra: ["web"] });
    // A stopped farm has no rules: absent on both sides.
    expect(desiredFarmHashes(desired.map((f) => ({ ...f, status: "stopped" as const })))).toEqual({});
  });

  it("a node in maintenance is said to be, as a warning; a node running another farm set is a warning naming the farm; split brain stays critical", () => {
    const want = desiredFarmHashes(desired);
    const m = clusterView("lab x", reading([obs("n1", { vrrpState: "fault" }), obs("n2", { vrrpState: "master", holds: [...FLOATING] })], [{ maintenance: true, farms: want }, { farms: want }]), desired);
    expect(m.severity).toBe("warning");
    expect(m.problems.find((p) => p.nodes.includes("n1"))).toMatchObject({ code: "maintenance", message: expect.stringMatching(/n1 is in maintenance/) });
    expect(m.nodes.map((n) => [n.maintenance, n.applied.comparison?.matches])).toEqual([
      [true, true],
      [false, true],
    ]);

    const d = clusterView("lab x", reading([obs("n1", { vrrpState: "master", holds: [...FLOATING] }), obs("n2")], [{ farms: want }, { farms: { web: "000000000000" } }]), desired);
    expect(d.severity).toBe("warning");
    expect(d.problems).toEqual([expect.objectContaining({ code: "config-differs", nodes: ["n2"], message: expect.stringMatching(/different rules for web/) })]);
    expect(formatClusterView(d)).toMatch(/n2\s+applied [0-9a-f]{12}, DIFFERS from the desired set/);

    const s = clusterView("lab x", reading([obs("n1", { vrrpState: "master", holds: [...FLOATING] }), obs("n2", { vrrpState: "master", holds: [...FLOATING] })], [{ farms: want }, { farms: want }]), null);
    expect(s.severity).toBe("critical");
    expect(s.problems[0]).toMatchObject({ code: "split-brain", severity: "critical" });
    expect(s.nodes[0]!.applied.comparison).toBeNull();
  });

  it("keepalived tracks the maintenance file when asked (weight 0: FAULT), and refuses a path keepalived would split", () => {
    const config = parseClusterConfig({
      name: "edge",
      virtualRouterId: 9,
      interfaces: { client: "cli0", backend: "bk0", sync: "sync0" },
      nodes: [
        { id: 1, name: "a", priority: 200, syncAddress: "192.0.2.1" },
        { id: 2, name: "b", priority: 150, syncAddress: "192.0.2.2" },
      ],
    });
    const notify = ["/usr/bin/node", "natfarm.mjs", "cluster", "notify"];
    expect(renderKeepalived(config, 1, [], { notify })).not.toMatch(/track_file/);
    const text = renderKeepalived(config, 1, [], { notify, maintenanceFile: "/run/natfarm/cluster/maintenance" });
    expect(text).toMatch(/track_file natfarm_maintenance \{\n {4}file "\/run\/natfarm\/cluster\/maintenance"\n {4}weight 0\n {4}init_file 0\n\}/);
    expect(text).toMatch(/ {4}track_file \{\n {8}natfarm_maintenance\n {4}\}/);
    expect(() => renderKeepalived(config, 1, [], { notify, maintenanceFile: "/tmp/a b" })).toThrow(/maintenance file must be a path without spaces/);
  });
});

describe("cluster service: the nodes' own records (ClusterNode)", () => {
  it("each node's record beside its kernel's read-back: current when its version is the desired one; a failed sync is a warning; no record, null", () => {
    const want = desiredFarmHashes(desired);
    const version = setVersion(want);
    const seen = new Date(Date.now() - 1_000);
    const v = clusterView("lab x", reading([obs("n1", { vrrpState: "master", holds: [...FLOATING] }), obs("n2")], [{ farms: want }, { farms: want }]), desired, [
      { name: "n1", role: "master", appliedRevision: 7, appliedVersion: version, appliedAt: seen, applyError: null, lastSeen: seen },
      { name: "n2", role: "backup", appliedRevision: 6, appliedVersion: "0123456789ab", appliedAt: seen, applyError: "the natfarm agent is not running", lastSeen: seen },
    ]);
    expect(v.nodes[0]!.record).toEqual({ role: "master", appliedRevision: 7, appliedVersion: version, appliedAt: seen.toISOString(), applyError: null, lastSeen: seen.toISOString(), current: true, lastSeenAgoMs: expect.any(Number), stale: false });
    expect(v.nodes[1]!.record).toMatchObject({ appliedRevision: 6, current: false });
    expect(v.problems).toEqual([expect.objectContaining({ severity: "warning", code: "sync-failed", nodes: ["n2"], message: "n2 could not apply the shared farms: the natfarm agent is not running" })]);
    expect(formatClusterView(v)).toMatch(/recorded: backup, revision 6, version 0123456789ab \(behind\) at .*, last apply FAILED: the natfarm agent is not running/);
    const none = clusterView("lab x", reading([obs("n1", { vrrpState: "master", holds: [...FLOATING] }), obs("n2")], [{ farms: want }, { farms: want }]), desired);
    expect(none.nodes.map((n) => n.record)).toEqual([null, null]);
    expect(none.severity).toBe("ok");
    expect(none.recordsRead).toBe(false);
    expect(formatClusterView(none)).toMatch(/recorded: nothing \(no sync loop on this node has written a record; records not read: no database\)/);
  });

  it("a node that has not reported for more than RECORD_STALE_MS is stale: a warning naming it and when it was last seen", () => {
    const want = desiredFarmHashes(desired);
    const version = setVersion(want);
    const fresh = new Date(Date.now() - 2_000);
    const old = new Date(Date.now() - RECORD_STALE_MS - 5_000);
    const rec = (name: string, lastSeen: Date) => ({ name, role: name === "n1" ? "master" : "backup", appliedRevision: 3, appliedVersion: version, appliedAt: lastSeen, applyError: null, lastSeen });
    const v = clusterView("lab x", reading([obs("n1", { vrrpState: "master", holds: [...FLOATING] }), obs("n2")], [{ farms: want }, { farms: want }]), desired, [rec("n1", fresh), rec("n2", old)]);
    expect(v.nodes.map((n) => n.record!.stale)).toEqual([false, true]);
    expect(v.nodes[1]!.record!.lastSeenAgoMs).toBeGreaterThanOrEqual(RECORD_STALE_MS + 5_000);
    expect(v.problems).toEqual([expect.objectContaining({ severity: "warning", code: "record-stale", nodes: ["n2"], message: expect.stringMatching(/^n2 has not reported for 1[5-6] s \(last seen /) })]);
    expect(v.severity).toBe("warning");
    expect(v.recordsRead).toBe(true);
    expect(formatClusterView(v)).toMatch(/n2 .*\n.*recorded: backup, revision 3, version \w+ \(current\) at .*STALE \(1[5-6] s ago\)/);
  });
});
