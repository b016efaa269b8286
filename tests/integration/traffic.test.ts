import { describe, expect, it } from "vitest";
import { applyFarms, farmPackets } from "../helpers/engine.ts";
import { labEnsureVip, labTraffic, type TrafficResult } from "../../lib/lab/index.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { labFarm } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";
import { chiSquare } from "../helpers/stats.ts";
import { parseTarget } from "../../lib/privileged/target.ts";

/**
 * Real connections from the lab's client through natfarm's rules in the load
 * balancer namespace to the backends, which report who they are and which
 * source address they saw.
 */
const lab = useLab({ backends: 5, ports: [80, 5353] });
const CONNECTIONS = 2000;

async function send(vip: string, port: number, connections = CONNECTIONS, protocol: "tcp" | "udp" = "tcp"): Promise<TrafficResult> {
  await labEnsureVip({ name: lab.name, vip });
  return labTraffic({ name: lab.name, vip, port, connections, protocol, concurrency: 64 });
}

const counts = (r: TrafficResult, n: number) => Array.from({ length: n }, (_, i) => r.backends[`b${i}`]?.count ?? 0);

describe("shares follow the weights (chi-square, α = 0.001)", () => {
  const cases: [string, string, number[], "tcp" | "udp"][] = [
    ["2 backends 1:3", "198.51.100.20", [1, 3], "tcp"],
    ["3 backends 1:1:1", "198.51.100.21", [1, 1, 1], "tcp"],
    ["5 backends 5:1:1:2:1", "198.51.100.22", [5, 1, 1, 2, 1], "tcp"],
    ["udp, 3 backends 1:2:3", "198.51.100.23", [1, 2, 3], "udp"],
  ];
  it.each(cases)("%s", async (label, vip, weights, protocol) => {
    const target = parseTarget(lab.info.target);
    const port = protocol === "udp" ? 5353 : 80;
    const farm = labFarm(label.replace(/[^a-z0-9]/gi, "").slice(0, 20), vip, port, weights, "dnat", protocol);
    await applyFarms([farm], { target });
    const r = await send(vip, port, CONNECTIONS, protocol);
    expect(r.failed, JSON.stringify(r.errors)).toBe(0);
    expect(r.ok).toBe(CONNECTIONS);
    const observed = counts(r, weights.length);
    expect(observed.reduce((a, b) => a + b, 0)).toBe(CONNECTIONS);
    const chi = chiSquare(observed, weights);
    expect(chi.pass, `observed ${observed.join("/")} for weights ${weights.join(":")}: χ²=${chi.statistic.toFixed(2)} ≥ ${chi.critical}`).toBe(true);
    // The same counts against equal weights: the test has the power to see a wrong share.
    if (new Set(weights).size > 1) expect(chiSquare(observed, weights.map(() => 1)).pass).toBe(false);
  });
});

describe("NAT and DNAT modes", () => {
  const vip = "198.51.100.30";
  const farm = (mode: "nat" | "dnat"): FarmInput => labFarm("modes", vip, 80, [1, 1, 1], mode);
  const peers = (r: TrafficResult) => new Set(Object.values(r.backends).flatMap((b) => Object.keys(b.peers)));

  it("dnat: backends see the client's address; nat: they see the VIP; switching changes new connections", async () => {
    const target = parseTarget(lab.info.target);
    await applyFarms([farm("dnat")], { target });
    const d = await send(vip, 80, 300);
    expect(d.failed).toBe(0);
    expect(peers(d)).toEqual(new Set([lab.info.clientIp]));

    await applyFarms([farm("nat")], { target, only: ["modes"] });
    const n = await send(vip, 80, 300);
    expect(n.failed).toBe(0);
    expect(peers(n)).toEqual(new Set([vip]));

    await applyFarms([farm("dnat")], { target, only: ["modes"] });
    expect(peers(await send(vip, 80, 100))).toEqual(new Set([lab.info.clientIp]));
  });

  it("re-applying an unchanged farm writes nothing and its counters keep counting", async () => {
    const target = parseTarget(lab.info.target);
    await applyFarms([farm("dnat")], { target });
    await send(vip, 80, 200);
    const packets = () => farmPackets(target, "modes");
    const before = await packets();
    expect(before).toBeGreaterThanOrEqual(200);
    const r = await applyFarms([farm("dnat")], { target });
    expect(r.changed).toBe(false);
    expect(await packets()).toBe(before);
    await send(vip, 80, 100);
    expect(await packets()).toBeGreaterThanOrEqual(before + 100);
  });
});
