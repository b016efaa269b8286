import { describe, expect, it } from "vitest";
import { applyFarms, driftReport } from "../helpers/engine.ts";
import { labEnsureVip, labTraffic, type TrafficResult } from "../../lib/lab/index.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { parseTarget } from "../../lib/privileged/target.ts";
import { SCHEDULER_FARMS } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";

/** Schedulers and persistence with real connections through the lab. */
const lab = useLab({ backends: 4, ports: [80] });
const target = () => parseTarget(lab.info.target);
const farmNamed = (name: string) => SCHEDULER_FARMS.find((f) => f.name === name)!;

async function send(vip: string, connections: number, extra: { sources?: string[]; concurrency?: number } = {}): Promise<TrafficResult> {
  await labEnsureVip({ name: lab.name, vip });
  const r = await labTraffic({ name: lab.name, vip, port: 80, connections, concurrency: extra.concurrency ?? 32, sources: extra.sources });
  expect(r.failed, JSON.stringify(r.errors)).toBe(0);
  return r;
}
const counts = (r: TrafficResult, n: number) => Array.from({ length: n }, (_, i) => r.backends[`b${i}`]?.count ?? 0);
const clients = (n: number) => Array.from({ length: n }, (_, i) => `198.51.100.${100 + i}`);

describe("schedulers", () => {
  it("the rendered rules are what the kernel gives back (all schedulers, persistence)", async () => {
    await applyFarms(SCHEDULER_FARMS, { target: target() });
    expect((await driftReport(SCHEDULER_FARMS, { target: target() })).inSync).toBe(true);
  });

  it("round robin over 3 backends rotates exactly", async () => {
    await applyFarms([farmNamed("rr")], { target: target() });
    expect(counts(await send("198.51.100.40", 300), 3)).toEqual([100, 100, 100]);
    // Sequential connections follow the rotation one by one.
    const one = await send("198.51.100.40", 7, { concurrency: 1 });
    expect(counts(one, 3).sort()).toEqual([2, 2, 3]);
  });

  it("source hash keeps one client on one backend, and spreads 50 clients over all backends", async () => {
    await applyFarms([farmNamed("hash")], { target: target() });
    const single = await send("198.51.100.41", 100);
    expect(Object.keys(single.backends)).toHaveLength(1);
    const many = await send("198.51.100.41", 200, { sources: clients(50) });
    for (const [source, per] of Object.entries(many.bySource!)) expect(Object.keys(per), source).toHaveLength(1);
    expect(Object.keys(many.backends).sort()).toEqual(["b0", "b1", "b2"]);
    // The same 50 clients again: every one lands where it landed before.
    const again = await send("198.51.100.41", 50, { sources: clients(50) });
    for (const [source, per] of Object.entries(again.bySource!)) expect(Object.keys(per)).toEqual(Object.keys(many.bySource![source]!));
  });

  it("priority sends nothing to the lower level until the higher one fails", async () => {
    const prio = farmNamed("prio");
    await applyFarms([prio], { target: target() });
    const r = await send("198.51.100.42", 400);
    expect(r.backends.b2).toBeUndefined();
    expect(counts(r, 2).reduce((a, b) => a + b, 0)).toBe(400);
    const failed: FarmInput = { ...prio, backends: prio.backends!.map((b, i) => (i < 2 ? { ...b, state: "down" as const } : b)) };
    await applyFarms([failed], { target: target(), only: ["prio"] });
    expect(counts(await send("198.51.100.42", 100), 3)).toEqual([0, 0, 100]);
  });

  it("persistence: a client returns to its backend within the TTL, and is balanced again after it", async () => {
    const sticky: FarmInput = { ...farmNamed("sticky"), persistenceTtl: 1 };
    await applyFarms([sticky], { target: target() });
    const first = await send("198.51.100.43", 60, { concurrency: 1 });
    expect(Object.keys(first.backends)).toHaveLength(1);
    // Many clients at once: each sticks to one backend, and both backends get clients.
    const many = await send("198.51.100.43", 120, { sources: clients(40), concurrency: 1 });
    for (const per of Object.values(many.bySource!)) expect(Object.keys(per)).toHaveLength(1);
    expect(Object.keys(many.backends).sort()).toEqual(["b0", "b1"]);
    // After the TTL a client's next connection is a fresh random choice: over rounds it does move.
    const seen = new Set<string>();
    for (let round = 0; round < 10 && seen.size < 2; round++) {
      await new Promise((r) => setTimeout(r, 2100));
      seen.add(Object.keys((await send("198.51.100.43", 1)).backends)[0]!);
    }
    expect(seen.size).toBe(2);
  });
});
