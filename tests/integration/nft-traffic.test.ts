import { describe, expect, it } from "vitest";
import { connectionStats, cutConnections } from "../../lib/applier/index.ts";
import { labEnsureVip, labHold, labTraffic, type TrafficResult } from "../../lib/lab/index.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { applyNftFarms, readNft } from "../../lib/nftables/index.ts";
import { parseTarget } from "../../lib/privileged/target.ts";
import { labFarm, SCHEDULER_FARMS } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";
import { chiSquare } from "../helpers/stats.ts";

/**
 * The nftables engine with real connections through the lab: the same
 * shares, modes, schedulers, persistence and maintenance as the iptables
 * engine's traffic, scheduler and lifecycle tests, one lab for the file.
 */
const lab = useLab({ backends: 5, ports: [80, 5353] });
const target = () => parseTarget(lab.info.target);
const CONNECTIONS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(vip: string, port: number, connections: number, extra: { protocol?: "tcp" | "udp"; sources?: string[]; concurrency?: number } = {}): Promise<TrafficResult> {
  await labEnsureVip({ name: lab.name, vip });
  const r = await labTraffic({ name: lab.name, vip, port, connections, protocol: extra.protocol ?? "tcp", concurrency: extra.concurrency ?? 64, sources: extra.sources });
  expect(r.failed, JSON.stringify(r.errors)).toBe(0);
  return r;
}
const counts = (r: TrafficResult, n: number) => Array.from({ length: n }, (_, i) => r.backends[`b${i}`]?.count ?? 0);
const clients = (n: number) => Array.from({ length: n }, (_, i) => `198.51.100.${100 + i}`);
const farmNamed = (name: string) => SCHEDULER_FARMS.find((f) => f.name === name)!;

/** Each backend's counter (its element of the `backends` set), by mark. */
async function backendCounters(): Promise<Map<number, number>> {
  const live = await readNft(target());
  return new Map((live.sets.get("backends")?.elements ?? []).map((e) => [Number(e.key), e.counter?.packets ?? -1]));
}

describe("nftables: shares follow the weights (chi-square, α = 0.001)", () => {
  const cases: [string, string, number[], "tcp" | "udp"][] = [
    ["2 backends 1:3", "198.51.100.20", [1, 3], "tcp"],
    ["3 backends 1:1:1", "198.51.100.21", [1, 1, 1], "tcp"],
    ["5 backends 5:1:1:2:1", "198.51.100.22", [5, 1, 1, 2, 1], "tcp"],
    ["udp, 3 backends 1:2:3", "198.51.100.23", [1, 2, 3], "udp"],
  ];
  it.each(cases)("%s", async (label, vip, weights, protocol) => {
    const port = protocol === "udp" ? 5353 : 80;
    const farm = labFarm(label.replace(/[^a-z0-9]/gi, "").slice(0, 20), vip, port, weights, "dnat", protocol);
    await applyNftFarms([farm], { target: target() });
    const r = await send(vip, port, CONNECTIONS, { protocol });
    expect(r.ok).toBe(CONNECTIONS);
    const observed = counts(r, weights.length);
    expect(observed.reduce((a, b) => a + b, 0)).toBe(CONNECTIONS);
    const chi = chiSquare(observed, weights);
    expect(chi.pass, `observed ${observed.join("/")} for weights ${weights.join(":")}: χ²=${chi.statistic.toFixed(2)} ≥ ${chi.critical}`).toBe(true);
    if (new Set(weights).size > 1) expect(chiSquare(observed, weights.map(() => 1)).pass).toBe(false);
    // The per-backend counters saw every new connection, backend by backend.
    const byMark = await backendCounters();
    expect([...byMark.values()].reduce((a, b) => a + b, 0)).toBe(CONNECTIONS);
  });
});

describe("nftables: NAT and DNAT modes", () => {
  const vip = "198.51.100.30";
  const farm = (mode: "nat" | "dnat"): FarmInput => labFarm("modes", vip, 80, [1, 1, 1], mode);
  const peers = (r: TrafficResult) => new Set(Object.values(r.backends).flatMap((b) => Object.keys(b.peers)));

  it("dnat: backends see the client's address; nat: they see the VIP; switching changes new connections", async () => {
    await applyNftFarms([farm("dnat")], { target: target() });
    expect(peers(await send(vip, 80, 300))).toEqual(new Set([lab.info.clientIp]));
    await applyNftFarms([farm("nat")], { target: target(), only: ["modes"] });
    expect(peers(await send(vip, 80, 300))).toEqual(new Set([vip]));
    await applyNftFarms([farm("dnat")], { target: target(), only: ["modes"] });
    expect(peers(await send(vip, 80, 100))).toEqual(new Set([lab.info.clientIp]));
  });

  it("an unchanged re-apply writes nothing, and a change to another farm leaves this farm's counters counting", async () => {
    const other = labFarm("other", "198.51.100.31", 80, [1, 1]);
    await applyNftFarms([farm("dnat"), other], { target: target() });
    const start = await backendCounters();
    await send(vip, 80, 200);
    const before = await backendCounters();
    const mine = [...before.keys()].filter((m) => before.get(m)! > (start.get(m) ?? 0));
    expect(mine.reduce((a, m) => a + before.get(m)! - start.get(m)!, 0)).toBe(200);
    expect((await applyNftFarms([farm("dnat"), other], { target: target() })).changed).toBe(false);
    const changed = await applyNftFarms([farm("dnat"), { ...other, backends: other.backends!.map((b, i) => ({ ...b, weight: i + 2 })) }], { target: target() });
    expect(changed.farmsChanged).toEqual(["other"]);
    const after = await backendCounters();
    for (const m of mine) expect(after.get(m)).toBe(before.get(m));
    await send(vip, 80, 100);
    const later = await backendCounters();
    expect(mine.reduce((a, m) => a + later.get(m)! - before.get(m)!, 0)).toBe(100);
  });
});

describe("nftables: schedulers", () => {
  it("round robin over 3 backends rotates exactly", async () => {
    await applyNftFarms([farmNamed("rr")], { target: target() });
    expect(counts(await send("198.51.100.40", 80, 300, { concurrency: 32 }), 3)).toEqual([100, 100, 100]);
    const one = await send("198.51.100.40", 80, 7, { concurrency: 1 });
    expect(counts(one, 3).sort()).toEqual([2, 2, 3]);
  });

  it("source hash keeps one client on one backend, and spreads 50 clients over all backends", async () => {
    await applyNftFarms([farmNamed("hash")], { target: target() });
    const single = await send("198.51.100.41", 80, 100);
    expect(Object.keys(single.backends)).toHaveLength(1);
    const spread = await send("198.51.100.41", 80, 200, { sources: clients(50) });
    for (const [source, per] of Object.entries(spread.bySource!)) expect(Object.keys(per), source).toHaveLength(1);
    expect(Object.keys(spread.backends).sort()).toEqual(["b0", "b1", "b2"]);
    const again = await send("198.51.100.41", 80, 50, { sources: clients(50) });
    for (const [source, per] of Object.entries(again.bySource!)) expect(Object.keys(per)).toEqual(Object.keys(spread.bySource![source]!));
  });

  it("priority sends nothing to the lower level until the higher one fails", async () => {
    const prio = farmNamed("prio");
    await applyNftFarms([prio], { target: target() });
    const r = await send("198.51.100.42", 80, 400);
    expect(r.backends.b2).toBeUndefined();
    expect(counts(r, 2).reduce((a, b) => a + b, 0)).toBe(400);
    const failed: FarmInput = { ...prio, backends: prio.backends!.map((b, i) => (i < 2 ? { ...b, state: "down" as const } : b)) };
    await applyNftFarms([failed], { target: target(), only: ["prio"] });
    expect(counts(await send("198.51.100.42", 80, 100), 3)).toEqual([0, 0, 100]);
  });

  it("persistence: a client returns to its backend within the TTL, and is balanced again after it", async () => {
    const sticky: FarmInput = { ...farmNamed("sticky"), persistenceTtl: 1 };
    await applyNftFarms([sticky], { target: target() });
    const first = await send("198.51.100.43", 80, 60, { concurrency: 1 });
    expect(Object.keys(first.backends)).toHaveLength(1);
    const many = await send("198.51.100.43", 80, 120, { sources: clients(40), concurrency: 1 });
    for (const per of Object.values(many.bySource!)) expect(Object.keys(per)).toHaveLength(1);
    expect(Object.keys(many.backends).sort()).toEqual(["b0", "b1"]);
    const seen = new Set<string>();
    for (let round = 0; round < 10 && seen.size < 2; round++) {
      await sleep(2100);
      seen.add(Object.keys((await send("198.51.100.43", 80, 1)).backends)[0]!);
    }
    expect(seen.size).toBe(2);
  });
});

describe("nftables: backend maintenance", () => {
  function farm(name: string, vip: string, states: ("up" | "maintenance")[]): FarmInput {
    return { name, vip, ports: "80", protocol: "tcp", mode: "nat", backends: states.map((state, i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x400 + i + (vip.endsWith("61") ? 8 : 0), state })) };
  }

  it("drain: an open connection to the drained backend keeps working, new ones avoid it", async () => {
    const vip = "198.51.100.60";
    await labEnsureVip({ name: lab.name, vip });
    await applyNftFarms([farm("drain", vip, ["up", "maintenance"])], { target: target() });
    const held = labHold({ name: lab.name, vip, port: 80, durationMs: 2500, intervalMs: 100 });
    await sleep(600);
    await applyNftFarms([farm("drain", vip, ["maintenance", "up"])], { target: target(), only: ["drain"] });
    const fresh = await labTraffic({ name: lab.name, vip, port: 80, connections: 50 });
    expect(Object.keys(fresh.backends)).toEqual(["b1"]);
    const h = await held;
    expect(Object.keys(h.backends)).toEqual(["b0"]);
    expect(h.closedBy).toBe("client");
    expect(h.failed).toBe(0);
    expect(h.received).toBe(h.sent);
  });

  it("cut: the connection to the cut backend ends; conntrack counts connections by the backend's mark", async () => {
    const vip = "198.51.100.61";
    await labEnsureVip({ name: lab.name, vip });
    const before = farm("cut", vip, ["up", "maintenance"]);
    await applyNftFarms([before], { target: target() });
    const held = labHold({ name: lab.name, vip, port: 80, durationMs: 3000, intervalMs: 100 });
    await sleep(600);
    const stats = await connectionStats(target());
    expect(stats.byMark.get(0x408)?.established).toBe(1);
    await applyNftFarms([farm("cut", vip, ["maintenance", "up"])], { target: target(), only: ["cut"] });
    expect(await cutConnections(target(), 0x408)).toBeGreaterThanOrEqual(1);
    const h = await held;
    expect(Object.keys(h.backends)).toEqual(["b0"]);
    expect(h.closedBy !== "client" || h.received < h.sent || h.failed > 0, JSON.stringify(h)).toBe(true);
  });
});
