import { describe, expect, it } from "vitest";
import { createAgentHandler } from "../../lib/agent/server.ts";
import { validateFarms } from "../../lib/applier/apply.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import type { Engine } from "../../lib/kernel/engine.ts";
import { labEnsureVip, labHold, labTraffic, type TrafficResult } from "../../lib/lab/index.ts";
import { readNft } from "../../lib/nftables/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { formatTarget, parseTarget } from "../../lib/privileged/target.ts";
import { labFarm } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";
import { iptablesRestore, iptablesSave } from "../helpers/netns.ts";

/**
 * Switching a target's engine with traffic flowing: a full apply on the new
 * engine, then natfarm's rules of the old one removed (lib/kernel/direct.ts),
 * both ways. Marks carry over (the farms here name none), so a connection
 * held open across the switch keeps its backend; new connections made all
 * through the switch must all succeed; everyone else's nft table and
 * iptables rules stay byte for byte.
 */
const lab = useLab({ backends: 3, ports: [80] });
const target = () => parseTarget(lab.info.target);
const VIP = "198.51.100.80";
// No marks: the engines must agree on them by themselves.
const FARMS: FarmInput[] = [labFarm("sw", VIP, 80, [1, 1, 1], "nat"), labFarm("sw2", "198.51.100.81", 80, [2, 1], "dnat")];

const nft = async (args: string[], input?: string) => (await runPrivileged("nft", args, { target: target(), input })).stdout;
const FOREIGN_NFT = "table ip foreign {\n\tchain c {\n\t\ttype filter hook prerouting priority -200; policy accept;\n\t\tip saddr 192.0.2.9 counter accept\n\t}\n}\n";
const FOREIGN_IPT = "*mangle\n-A PREROUTING -s 192.0.2.7/32 -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n*nat\n-A POSTROUTING -s 192.0.2.8/32 -j MASQUERADE\nCOMMIT\n*filter\n-A INPUT -s 192.0.2.6/32 -j ACCEPT\nCOMMIT\n";
const foreign = async () => ({
  nft: await nft(["-s", "list", "table", "ip", "foreign"]),
  ipt: (await iptablesSave(target()))
    .split("\n")
    .filter((l) => l && !l.startsWith("#") && !l.includes("NATFARM"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
    .join("\n"),
});
const natfarmIptables = async () => (await iptablesSave(target())).split("\n").filter((l) => l.includes("NATFARM") || l.includes("FARM_"));
const hasNftTable = async () => (await readNft(target())).exists;

/** Backend marks as each engine holds them, by farm and backend address. */
async function marksOf(engine: Engine): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (engine === "nftables") {
    for (const e of (await readNft(target())).sets.get("dnat_port")?.elements ?? []) out.set(`${e.comment} ${e.value}`, e.key);
  } else {
    for (const l of await natfarmIptables()) {
      const m = /--mark (0x[0-9a-f]+)\S* .*--comment (FARM_\S+) -j DNAT --to-destination ([0-9.]+):(\d+)/.exec(l);
      if (m) out.set(`${m[2]} ${m[3]} . ${m[4]}`, m[1]!);
    }
  }
  return out;
}

/** A switch while new connections are made (and one is held open); returns what the traffic saw. */
async function switchUnderTraffic(to: Engine) {
  const held = labHold({ name: lab.name, vip: VIP, port: 80, durationMs: 3000, intervalMs: 100 });
  const started = Date.now();
  const flow = labTraffic({ name: lab.name, vip: VIP, port: 80, connections: 4000, concurrency: 8, timeoutMs: 2000 });
  await new Promise((r) => setTimeout(r, 500));
  const switchAt = Date.now() - started;
  const r = await directKernel.applyFarms(FARMS, { target: target(), engine: to });
  const switchedIn = Date.now() - started;
  const [traffic, hold] = await Promise.all([flow, held]);
  return { r, traffic, hold, switchAt, switchedIn, trafficMs: Date.now() - started };
}

function expectClean(traffic: TrafficResult) {
  expect(traffic.failed, JSON.stringify(traffic.errors)).toBe(0);
  expect(Object.keys(traffic.backends).sort()).toEqual(["b0", "b1", "b2"]);
}

describe("engine switch", () => {
  it("iptables → nftables → iptables with traffic flowing: no failed connection, the held one keeps its backend, nothing of the old engine left, foreign rules untouched", async () => {
    await labEnsureVip({ name: lab.name, vip: VIP });
    await nft(["-f", "-"], FOREIGN_NFT);
    await iptablesRestore(target(), FOREIGN_IPT);
    const before = await foreign();

    const first = await directKernel.applyFarms(FARMS, { target: target(), engine: "iptables" });
    expect(first.engine).toBe("iptables");
    expect(first.switchedFrom).toBeUndefined();
    const iptMarks = await marksOf("iptables");
    expect(iptMarks.size).toBe(5);

    const toNft = await switchUnderTraffic("nftables");
    // The switch happened while connections were being made.
    expect(toNft.switchedIn).toBeLessThan(toNft.trafficMs);
    expect(toNft.r.engine).toBe("nftables");
    expect(toNft.r.switchedFrom?.engine).toBe("iptables");
    expectClean(toNft.traffic);
    expect(toNft.hold.failed, JSON.stringify(toNft.hold)).toBe(0);
    expect(toNft.hold.received).toBe(toNft.hold.sent);
    expect(Object.keys(toNft.hold.backends)).toHaveLength(1);
    expect(await natfarmIptables()).toEqual([]);
    expect(await hasNftTable()).toBe(true);
    expect(await marksOf("nftables")).toEqual(iptMarks);
    expect(await foreign()).toEqual(before);
    // Drift is asked of the engine that holds the rules: in sync there, every farm missing on the old one.
    expect((await directKernel.driftReport(FARMS, { target: target(), engine: "nftables" })).inSync).toBe(true);
    expect((await directKernel.driftReport(FARMS, { target: target(), engine: "iptables" })).farms.map((f) => f.status)).toEqual(["missing", "missing"]);
    // Applying again on the same engine switches nothing.
    const again = await directKernel.applyFarms(FARMS, { target: target(), engine: "nftables" });
    expect(again.changed).toBe(false);
    expect(again.switchedFrom).toBeUndefined();

    const back = await switchUnderTraffic("iptables");
    expect(back.switchedIn).toBeLessThan(back.trafficMs);
    expect(back.r.switchedFrom?.engine).toBe("nftables");
    expectClean(back.traffic);
    expect(back.hold.failed, JSON.stringify(back.hold)).toBe(0);
    expect(back.hold.received).toBe(back.hold.sent);
    expect(await hasNftTable()).toBe(false);
    expect(await marksOf("iptables")).toEqual(iptMarks);
    expect(await foreign()).toEqual(before);
    expect((await directKernel.driftReport(FARMS, { target: target(), engine: "iptables" })).inSync).toBe(true);
  });

  it("a scoped change does not switch: the other engine's rules stay until a full apply", async () => {
    await directKernel.applyFarms(FARMS, { target: target(), engine: "iptables" });
    const r = await directKernel.applyFarms(FARMS, { target: target(), engine: "nftables", only: ["sw"] });
    expect(r.switchedFrom).toBeUndefined();
    expect((await natfarmIptables()).length).toBeGreaterThan(0);
    const full = await directKernel.applyFarms(FARMS, { target: target(), engine: "nftables" });
    expect(full.switchedFrom?.engine).toBe("iptables");
    expect(await natfarmIptables()).toEqual([]);
    // Flushing on either engine leaves no natfarm rule in both.
    await directKernel.applyFarms([], { target: target(), engine: "iptables" });
    expect(await hasNftTable()).toBe(false);
    expect(await natfarmIptables()).toEqual([]);
  });

  it("drift on nftables is reported per farm as on iptables: an element removed by hand, a rule added by hand, the skeleton gone", async () => {
    const farms = FARMS.map((f, i) => ({ ...f, backends: f.backends!.map((b, j) => ({ ...b, mark: 0x600 + i * 8 + j })) }));
    await directKernel.applyFarms(farms, { target: target(), engine: "nftables" });
    const resolved = resolveMarks(validateFarms(farms));
    const drift = () => directKernel.driftOfFarms(target(), resolved, { engine: "nftables" });
    expect([...(await drift()).values()].every((d) => d.inSync)).toBe(true);
    await nft(["delete", "element", "ip", "natfarm", "dnat_port", "{ 0x609 }"]);
    await nft(["add", "rule", "ip", "natfarm", "farm_sw", "counter"]);
    const d = await drift();
    expect(d.get("sw2")).toEqual({ inSync: false, missing: ['element dnat_port 0x609 comment "FARM_sw2_1_" : 203.0.113.11 . 80'], unexpected: [] });
    expect(d.get("sw")!.inSync).toBe(false);
    expect(d.get("sw")!.unexpected).toEqual(["chain farm_sw counter"]);
    const one = await directKernel.driftOfFarm(target(), resolved[1]!, { engine: "nftables" });
    expect(one).toEqual(d.get("sw2"));
    const report = await directKernel.driftReport(farms, { target: target(), engine: "nftables" });
    expect(report.inSync).toBe(false);
    expect(report.farms.map((f) => f.status)).toEqual(["differs", "differs"]);
    expect(report.payload).toContain("add element ip natfarm dnat_port { 0x609");
    await nft(["delete", "chain", "ip", "natfarm", "post_snat"]);
    expect((await drift()).get("sw")!.missing.some((m) => m.includes("not as natfarm wrote them"))).toBe(true);
    // A full apply repairs all of it.
    await directKernel.applyFarms(farms, { target: target(), engine: "nftables" });
    expect([...(await drift()).values()].every((x) => x.inSync)).toBe(true);
    await directKernel.applyFarms([], { target: target(), engine: "nftables" });
  });

  it("the agent: apply, drift and tables name their engine; an unknown engine is refused and changes nothing", async () => {
    const handle = createAgentHandler({ targets: [target()], labs: [] });
    const t = formatTarget(target());
    const call = async (op: string, params: object) => handle(JSON.stringify({ id: 1, op, params }));
    const bad = await call("apply", { target: t, engine: "ipvs", farms: FARMS });
    expect(bad).toMatchObject({ ok: false, error: { kind: "bad-request" } });
    expect(JSON.stringify(bad)).toContain("engine");
    expect(await hasNftTable()).toBe(false);
    expect(await natfarmIptables()).toEqual([]);

    const applied = await call("apply", { target: t, engine: "nftables", farms: FARMS });
    expect(applied).toMatchObject({ ok: true, result: { engine: "nftables", changed: true } });
    expect(await hasNftTable()).toBe(true);
    expect(await natfarmIptables()).toEqual([]);
    const drift = await call("driftReport", { target: t, engine: "nftables", farms: FARMS });
    expect(drift).toMatchObject({ ok: true, result: { inSync: true } });
    const tables = (await call("readTables", { target: t, engine: "nftables" })) as { ok: true; result: { tables: { name: string; chains: { name: string; rules: { farm: string | null; packets: number }[] }[] }[] } };
    expect(tables.ok).toBe(true);
    const chains = tables.result.tables[0]!.chains;
    expect(chains.map((c) => c.name)).toEqual(expect.arrayContaining(["farm_sw", "farm_sw2", expect.stringMatching(/^map dispatch /), expect.stringMatching(/^set backends /)]));
    // Every element of the dispatch map is linked to its farm.
    expect(chains.find((c) => c.name.startsWith("map dispatch "))!.rules.map((r) => r.farm).sort()).toEqual(["sw", "sw2"]);
    const byFarm = (await call("readNatfarmTables", { target: t, engine: "nftables", farm: "sw2" })) as typeof tables;
    expect(byFarm.result.tables[0]!.chains.flatMap((c) => c.rules.map((r) => r.farm))).toEqual(expect.arrayContaining(["sw2"]));
    expect(byFarm.result.tables[0]!.chains.flatMap((c) => c.rules.map((r) => r.farm)).every((f) => f === "sw2")).toBe(true);
    // Left out, the engine is iptables: the same farms there are missing.
    const old = (await call("driftReport", { target: t, farms: FARMS })) as { ok: true; result: { farms: { status: string }[] } };
    expect(old.result.farms.map((f) => f.status)).toEqual(["missing", "missing"]);
    // Back to iptables through the agent: the nft table goes.
    expect(await call("apply", { target: t, farms: FARMS })).toMatchObject({ ok: true, result: { engine: "iptables", switchedFrom: { engine: "nftables" } } });
    expect(await hasNftTable()).toBe(false);
  });
});
