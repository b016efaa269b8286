import { describe, expect, it } from "vitest";
import { AgentRequestSchema } from "../../lib/agent/protocol.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import type { Engine } from "../../lib/kernel/engine.ts";
import { withEngine } from "../../lib/kernel/port.ts";
import { labEnsureVip, labTraffic } from "../../lib/lab/index.ts";
import { parseTarget } from "../../lib/privileged/target.ts";
import { advance, countersOf, type CounterReading } from "../../lib/service/traffic-counters.ts";
import { labFarm } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";
import { iptables } from "../helpers/netns.ts";

/**
 * The traffic sampler's scoped read (readNatfarmTables with `translations`)
 * against the whole-table read it replaced, on real netfilter through the
 * lab, on both engines: the same counters, so the same farm totals, from a
 * snapshot that holds nothing but the translations.
 */
const lab = useLab({ backends: 3, ports: [80] });
const target = () => parseTarget(lab.info.target);

const FARMS = [labFarm("cnt-a", "198.51.100.41", 80, [1, 2, 3], "dnat"), labFarm("cnt-b", "198.51.100.42", 80, [1, 1], "nat")];
const SENT = { "cnt-a": 150, "cnt-b": 90 } as const;

const sorted = (r: CounterReading[]) => [...r].sort((a, b) => a.mark - b.mark);
const totals = (r: CounterReading[]) => Object.fromEntries([...advance(new Map(), r, 0)].map(([farm, c]) => [farm, [c.connections, c.bytes]]));
const ruleCount = (s: { tables: { chains: { rules: unknown[] }[] }[] }) => s.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);

describe.sequential("the sampler's scoped read of the translation counters", () => {
  for (const engine of ["iptables", "nftables"] as Engine[]) {
    it(`${engine}: the same counters and farm totals as a read of the whole tables, from the translations alone`, async () => {
      const k = withEngine(directKernel, engine);
      // A fresh apply (the other engine's rules, if any, are moved over): counters start at 0.
      await k.applyFarms(FARMS, { target: target() });
      if (engine === "iptables") {
        // A foreign DNAT rule that carries a mark match: not natfarm's, not counted by either read.
        await iptables(target(), ["-t", "nat", "-A", "PREROUTING", "-d", "192.0.2.9/32", "-p", "tcp", "--dport", "9", "-m", "mark", "--mark", "0x300", "-j", "DNAT", "--to-destination", "203.0.113.99:9"]);
      }
      for (const f of FARMS) {
        await labEnsureVip({ name: lab.name, vip: f.vip });
        const r = await labTraffic({ name: lab.name, vip: f.vip, port: 80, connections: SENT[f.name as keyof typeof SENT], protocol: "tcp", concurrency: 32 });
        expect(r.failed, JSON.stringify(r.errors)).toBe(0);
      }

      const whole = await k.readTables(target());
      const scoped = await k.readNatfarmTables(target(), { translations: true });
      const before = sorted(countersOf(whole));
      const now = sorted(countersOf(scoped));
      expect(now).toEqual(before);
      expect(now).toHaveLength(5);
      // Each farm's new connections, counted once per backend, by both reads alike.
      const t = totals(now);
      expect(t).toEqual(totals(before));
      expect(t["cnt-a"]![0]).toBe(SENT["cnt-a"]);
      expect(t["cnt-b"]![0]).toBe(SENT["cnt-b"]);
      // The scoped snapshot holds the translations and nothing else (no MARK rules, no dispatch, no foreign rule).
      expect(ruleCount(scoped)).toBe(5);
      expect(ruleCount(whole)).toBeGreaterThan(ruleCount(scoped) * 3);
      if (engine === "iptables") {
        expect(scoped.tables.map((x) => x.name)).toEqual(["nat"]);
        expect(scoped.tables[0]!.chains.flatMap((c) => c.rules).every((r) => r.owned && r.target === "DNAT")).toBe(true);
        await iptables(target(), ["-t", "nat", "-D", "PREROUTING", "-d", "192.0.2.9/32", "-p", "tcp", "--dport", "9", "-m", "mark", "--mark", "0x300", "-j", "DNAT", "--to-destination", "203.0.113.99:9"]);
      }
    });
  }

  it("no farm, or no natfarm table at all: no counters, not an error", async () => {
    const ipt = withEngine(directKernel, "iptables");
    const nft = withEngine(directKernel, "nftables");
    // Back on iptables with no farm: the nftables table is gone (moved over), iptables holds natfarm's skeleton only.
    await ipt.applyFarms([], { target: target() });
    expect(countersOf(await ipt.readNatfarmTables(target(), { translations: true }))).toEqual([]);
    expect(countersOf(await nft.readNatfarmTables(target(), { translations: true }))).toEqual([]);
    await nft.applyFarms([], { target: target() });
    expect(countersOf(await nft.readNatfarmTables(target(), { translations: true }))).toEqual([]);
  });

  it("the agent's protocol takes `translations: true` and nothing else there", () => {
    const req = (params: object) => AgentRequestSchema.safeParse({ id: 1, op: "readNatfarmTables", params: { target: "netns:x", ...params } }).success;
    expect(req({ translations: true, engine: "nftables" })).toBe(true);
    expect(req({ translations: false })).toBe(false);
    expect(req({ translations: "yes" })).toBe(false);
  });
});
