import { describe, expect, it } from "vitest";
import { labEnsureVip, labTraffic, type TrafficResult } from "../../lib/lab/index.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { applyNftFarms, readNft } from "../../lib/nftables/index.ts";
import { parseTarget } from "../../lib/privileged/target.ts";
import { labFarm } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";

/**
 * What only the nftables engine has, with real connections through the lab:
 * its per-backend counters (the `backends` set's elements). The shares,
 * modes, schedulers, persistence, drain, cut and health checks run on
 * nftables as the iptables suites themselves, a second time with
 * NATFARM_TEST_ENGINE=nftables (vitest.config.ts's "nftables" project).
 */
const lab = useLab({ backends: 3, ports: [80] });
const target = () => parseTarget(lab.info.target);

async function send(vip: string, port: number, connections: number, extra: { protocol?: "tcp" | "udp"; sources?: string[]; concurrency?: number } = {}): Promise<TrafficResult> {
  await labEnsureVip({ name: lab.name, vip });
  const r = await labTraffic({ name: lab.name, vip, port, connections, protocol: extra.protocol ?? "tcp", concurrency: extra.concurrency ?? 64, sources: extra.sources });
  expect(r.failed, JSON.stringify(r.errors)).toBe(0);
  return r;
}
const counts = (r: TrafficResult, n: number) => Array.from({ length: n }, (_, i) => r.backends[`b${i}`]?.count ?? 0);

/** Each backend's counter (its element of the `backends` set), by mark. */
async function backendCounters(): Promise<Map<number, number>> {
  const live = await readNft(target());
  return new Map((live.sets.get("backends")?.elements ?? []).map((e) => [Number(e.key), e.counter?.packets ?? -1]));
}

describe("nftables: per-backend counters", () => {
  it("each backend's counter counts exactly the new connections it was given", async () => {
    const vip = "198.51.100.21";
    const farm = labFarm("counted", vip, 80, [1, 2, 3], "dnat");
    await applyNftFarms([farm], { target: target() });
    const start = await backendCounters();
    const r = await send(vip, 80, 600);
    const after = await backendCounters();
    const live = await readNft(target());
    // Backend i's mark, from its translation's FARM_ comment.
    const markOf = new Map((live.sets.get("dnat_port")?.elements ?? []).filter((e) => e.comment?.startsWith("FARM_counted_")).map((e) => [Number(/_(\d+)_$/.exec(e.comment!)![1]), Number(e.key)]));
    expect(markOf.size).toBe(3);
    const seen = counts(r, 3);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(600);
    seen.forEach((n, i) => expect(after.get(markOf.get(i)!)! - (start.get(markOf.get(i)!) ?? 0), `backend ${i}`).toBe(n));
  });

  const vip = "198.51.100.30";
  const farm = (mode: "nat" | "dnat"): FarmInput => labFarm("modes", vip, 80, [1, 1, 1], mode);

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
