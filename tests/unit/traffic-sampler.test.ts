import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TablesRule, TablesSnapshot } from "../../lib/applier/tables.ts";
import { disconnectPrisma, openDatabase, type Db } from "../../lib/db/client.ts";
import type { KernelPort } from "../../lib/kernel/index.ts";
import { NFT_SNAPSHOT_TABLE } from "../../lib/nftables/view.ts";
import { advance, countersOf, ratesOf, type CounterReading, type FarmCount } from "../../lib/service/traffic-counters.ts";
import { createTrafficSampler, farmTraffic } from "../../lib/service/traffic-sampler.ts";

/**
 * The sampler's arithmetic (counters that restart when a farm is rewritten,
 * backends that come and go, gaps) and its storage, with snapshots as the
 * kernel port gives them and a real (SQLite) database.
 */
const rule = (farm: string | null, backend: number | null, spec: string, packets: number, bytes: number, target: string | null): TablesRule => ({
  spec,
  packets,
  bytes,
  target,
  comment: farm ? `FARM_${farm}_${backend}_` : null,
  owned: farm !== null,
  farm,
  backend,
});
const dnat = (farm: string, backend: number, mark: number, packets: number, bytes = packets * 60) =>
  rule(farm, backend, `-p tcp -m mark --mark 0x${mark.toString(16)} -m comment --comment FARM_${farm}_${backend}_ -j DNAT --to-destination 203.0.113.${10 + backend}:80`, packets, bytes, "DNAT");
const iptablesSnap = (rules: TablesRule[]): TablesSnapshot => ({
  at: new Date().toISOString(),
  tables: [
    {
      name: "mangle",
      // MARK rules match every new connection of the farm up to the last one that wins: never counted.
      chains: [{ name: "NATFARM-F-web", policy: null, owned: true, rules: [rule("web", 1, "-m statistic --mode random --probability 1.0 -j MARK --set-xmark 0x201/0xffffffff", 999, 99_999, "MARK")] }],
    },
    { name: "nat", chains: [{ name: "NATFARM-DST-0200", policy: null, owned: true, rules }] },
  ],
});
const read = (farm: string, mark: number, packets: number, bytes = packets * 60): CounterReading => ({ farm, mark, packets, bytes });
const totals = (m: Map<string, FarmCount>, farm: string) => [m.get(farm)?.connections, m.get(farm)?.bytes];

describe("countersOf: the counters that count a backend's new connections", () => {
  it("iptables: DNAT rules by mark, not the MARK rules nor foreign rules", () => {
    const snap = iptablesSnap([dnat("web", 0, 0x200, 5), dnat("web", 1, 0x201, 7), rule(null, null, "-p tcp -j DNAT --to-destination 192.0.2.1:80", 50, 500, "DNAT")]);
    expect(countersOf(snap)).toEqual([read("web", 0x200, 5), read("web", 0x201, 7)]);
  });
  it("nftables: the backends set's elements by their mark key", () => {
    const snap: TablesSnapshot = {
      at: "",
      tables: [
        {
          name: NFT_SNAPSHOT_TABLE,
          chains: [
            { name: "set backends (mark)", policy: null, owned: true, rules: [rule("web", 0, '0x00000200 comment "FARM_web_0_"', 3, 180, null)] },
            { name: "map dnat_port (mark : ipv4_addr . inet_service)", policy: null, owned: true, rules: [rule("web", 0, '0x00000200 comment "FARM_web_0_" : 203.0.113.10 . 80', 0, 0, null)] },
          ],
        },
      ],
    };
    expect(countersOf(snap)).toEqual([read("web", 0x200, 3, 180)]);
  });
});

describe("advance: totals that only grow", () => {
  it("adds what each counter counted since the last reading", () => {
    let m = advance(new Map(), [read("web", 0x200, 10), read("web", 0x201, 5)], 0);
    expect(totals(m, "web")).toEqual([15, 900]);
    m = advance(m, [read("web", 0x200, 12), read("web", 0x201, 9)], 10_000);
    expect(totals(m, "web")).toEqual([21, 1260]);
  });
  it("a counter restarted by a rewrite (lower than before) adds what it holds now, and the DNAT counter that kept counting is not counted twice", () => {
    let m = advance(new Map(), [read("web", 0x200, 100), read("web", 0x201, 100)], 0);
    // The farm was rewritten: 0x200's rule again from 0 (3 since), 0x201 kept counting (+4).
    m = advance(m, [read("web", 0x200, 3), read("web", 0x201, 104)], 10_000);
    expect(totals(m, "web")).toEqual([207, 207 * 60]);
    expect(m.get("web")!.backends[String(0x200)]!.total[0]).toBe(103);
    m = advance(m, [read("web", 0x200, 5), read("web", 0x201, 104)], 20_000);
    expect(totals(m, "web")).toEqual([209, 209 * 60]);
  });
  it("a gap (a farm or a backend missing from a reading) keeps the totals and does not count the same packets twice when it comes back", () => {
    let m = advance(new Map(), [read("web", 0x200, 10), read("api", 0x300, 1)], 0);
    m = advance(m, [read("api", 0x300, 2)], 10_000); // web missed (a read that failed for it, or stopped)
    expect(totals(m, "web")).toEqual([10, 600]);
    m = advance(m, [read("web", 0x200, 11), read("api", 0x300, 2)], 20_000);
    expect(totals(m, "web")).toEqual([11, 660]);
  });
  it("a removed backend's count stays in the farm's total; a new backend counts from its first counter", () => {
    let m = advance(new Map(), [read("web", 0x200, 10), read("web", 0x201, 10)], 0);
    m = advance(m, [read("web", 0x200, 10), read("web", 0x202, 4)], 10_000);
    expect(totals(m, "web")).toEqual([24, 24 * 60]);
  });
  it("a backend not seen for a day is forgotten", () => {
    let m = advance(new Map(), [read("web", 0x200, 10), read("web", 0x201, 1)], 0);
    m = advance(m, [read("web", 0x201, 1)], 25 * 3600_000);
    expect(Object.keys(m.get("web")!.backends)).toEqual([String(0x201)]);
    expect(totals(m, "web")).toEqual([11, 660]);
  });
});

describe("ratesOf: rates between neighbouring samples", () => {
  const s = (sec: number, c: number, b = c * 100) => ({ at: new Date(sec * 1000), connections: c, bytes: b });
  it("each step's rate, 0 over an idle stretch, and a fall in the totals never gives a negative rate", () => {
    expect(ratesOf([s(0, 0), s(10, 50), s(20, 50), s(600, 50), s(610, 150), s(620, 10)]).map((p) => p.connectionsPerS)).toEqual([5, 0, 0, 10, 0]);
    expect(ratesOf([s(0, 0), s(10, 50)])[0]).toEqual({ from: new Date(0).toISOString(), at: new Date(10_000).toISOString(), connectionsPerS: 5, bytesPerS: 500 });
  });
});

describe("the sampler: one read per step, written only when a farm moved", () => {
  let dir = "";
  let url = "";
  let db: Db;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-traffic-"));
    url = `file:${path.join(dir, "t.db")}`;
    db = await openDatabase(url);
  });
  afterAll(async () => {
    await disconnectPrisma(url);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("rewrites, idle stretches, a restart of the sampler and the graph's rates", async () => {
    let clock = 1_000_000_000_000;
    let counters: [number, number] = [0, 0];
    let fail = false;
    const kernel = {
      // The sampler asks for the translation counters alone, never the whole tables.
      readTables: async () => expect.fail("the sampler read the whole tables"),
      readNatfarmTables: async (_t: unknown, o: unknown) => {
        expect(o).toEqual({ translations: true });
        if (fail) throw new Error("agent down");
        return iptablesSnap([dnat("web", 0, 0x200, counters[0]), dnat("web", 1, 0x201, counters[1])]);
      },
    } as unknown as KernelPort;
    const series = [{ stepMs: 10_000, keepMs: 3600_000 }];
    const target = { kind: "netns", name: "nowhere" } as const;
    const sampler = createTrafficSampler({ db, kernel, target, series, now: () => clock });
    const step = async (c: [number, number]) => {
      clock += 10_000;
      counters = c;
      return sampler.tick();
    };
    expect(await step([10, 10])).toEqual(["web"]);
    expect(await step([20, 30])).toEqual(["web"]);
    // A health-driven rewrite restarted 0x200's counter; 0x201 went on.
    expect(await step([5, 40])).toEqual(["web"]);
    // Idle for a minute: nothing written.
    for (let i = 0; i < 6; i++) expect(await step([5, 40])).toEqual([]);
    expect(await step([15, 40])).toEqual(["web"]);
    const rows = await db.trafficSample.findMany({ where: { farm: "web" }, orderBy: { at: "asc" } });
    expect(rows.map((r) => r.connections)).toEqual([20, 50, 65, 65, 75]);
    const graph = await farmTraffic(db, "web", "1h", clock);
    expect(graph.points.map((p) => p.connectionsPerS)).toEqual([3, 1.5, 0, 1]);

    // A step that fails (the agent restarting) loses nothing; a new sampler (the checker restarted) goes on from the database.
    fail = true;
    clock += 10_000;
    await expect(sampler.tick()).rejects.toThrow("agent down");
    fail = false;
    const again = createTrafficSampler({ db, kernel, target, series, now: () => clock });
    clock += 10_000;
    counters = [16, 42];
    expect(await again.tick()).toEqual(["web"]);
    const last = await db.trafficSample.findFirst({ where: { farm: "web" }, orderBy: { at: "desc" } });
    expect(last!.connections).toBe(78);
  });

  it("keeps the fine series bounded: samples older than their window are deleted", async () => {
    const clock = { t: 2_000_000_000_000 };
    let n = 0;
    const kernel = { readNatfarmTables: async () => iptablesSnap([dnat("old", 0, 0x400, (n += 1))]) } as unknown as KernelPort;
    const sampler = createTrafficSampler({ db, kernel, target: { kind: "netns", name: "nowhere" }, series: [{ stepMs: 10_000, keepMs: 60_000 }], now: () => clock.t });
    for (let i = 0; i < 20; i++) {
      clock.t += 10_000;
      await sampler.tick();
    }
    const kept = await db.trafficSample.count({ where: { farm: "old" } });
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(6 + 6); // a window and at most one pruning interval
  });
});
