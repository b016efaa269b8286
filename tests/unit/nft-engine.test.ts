import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FarmListSchema, type FarmInput } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { applyNftFarms, driftNft, forgetRemembered, NftApplyError, parseNftJson, renderFullPayload, renderNft } from "../../lib/nftables/index.ts";
import { planNft } from "../../lib/nftables/plan.ts";
import { printRule } from "../../lib/nftables/json.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { FakeNft, fakeNftRunner } from "../helpers/fake-nft.ts";
import { guideFarm, MIXED_FARMS, SCHEDULER_FARMS } from "../helpers/farms.ts";

process.env.NATFARM_LOCK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-nft-locks-"));
const golden = (name: string) => fs.readFileSync(path.join(import.meta.dirname, "..", "golden", name), "utf8");
const render = (farms: FarmInput[]) => renderFullPayload(renderNft(resolveMarks(FarmListSchema.parse(farms))));
const ALL = [guideFarm("nat"), ...MIXED_FARMS, ...SCHEDULER_FARMS];

describe("nftables rendering (golden payloads)", () => {
  it.each(["nat", "dnat"] as const)("the guide's example, %s", (mode) => expect(render([guideFarm(mode)])).toBe(golden(`nft-guide-${mode}.nft`)));
  it("udp lists and ranges, protocol all, sctp, maintenance, a stopped farm", () => expect(render(MIXED_FARMS)).toBe(golden("nft-mixed.nft")));
  it("every scheduler and persistence", () => expect(render(SCHEDULER_FARMS)).toBe(golden("nft-schedulers.nft")));
  it("nothing up renders nothing", () => expect(render([{ ...guideFarm(), status: "stopped" }])).toBe(""));

  it("weights become weight-many slots out of Σw, one map element each: exact shares for any number of backends", () => {
    const farm = { name: "w", vip: "198.51.100.5", ports: "80", protocol: "tcp", mode: "dnat", backends: [5, 1, 1, 2, 1].map((weight, i) => ({ ip: `203.0.113.${10 + i}`, port: 80, weight, mark: 0x500 + i })) } satisfies FarmInput;
    const f = renderNft(resolveMarks(FarmListSchema.parse([farm]))).farms.get("w")!;
    expect(f.rules![0]).toBe('meta mark set numgen random mod 10 offset 0xa00000 jump pick_backend comment "FARM_w_weight_"');
    const slots = f.elements.filter((e) => e.map === "slots").map((e) => `${e.key} ${e.value}`);
    expect(slots).toEqual(["0xa00000 0x500", "0xa00001 0x500", "0xa00002 0x500", "0xa00003 0x500", "0xa00004 0x500", "0xa00005 0x501", "0xa00006 0x502", "0xa00007 0x503", "0xa00008 0x503", "0xa00009 0x504"]);
  });

  it("weights are divided by their gcd: 100:100:50 is 2:2:1, the same shares in 5 slots", () => {
    const farm = { name: "g", vip: "198.51.100.6", ports: "80", protocol: "tcp", mode: "dnat", backends: [100, 100, 50].map((weight, i) => ({ ip: `203.0.113.${10 + i}`, port: 80, weight, mark: 0x600 + i })) } satisfies FarmInput;
    const f = renderNft(resolveMarks(FarmListSchema.parse([farm]))).farms.get("g")!;
    expect(f.rules![0]).toBe('meta mark set numgen random mod 5 offset 0xc00000 jump pick_backend comment "FARM_g_weight_"');
    expect(f.elements.filter((e) => e.map === "slots").map((e) => e.value)).toEqual(["0x600", "0x600", "0x601", "0x601", "0x602"]);
  });
});

describe("nftables read-back", () => {
  it("prints nft's JSON rules in the text natfarm writes (marks in hex, maps, set updates)", () => {
    const expr = [
      { mangle: { key: { meta: { key: "mark" } }, value: 816 } },
      { match: { op: "==", left: { concat: [{ payload: { protocol: "ip", field: "saddr" } }, { meta: { key: "mark" } }] }, right: "@persist" } },
      { mangle: { key: { ct: { key: "mark" } }, value: { meta: { key: "mark" } } } },
    ];
    expect(printRule(expr, "FARM_sticky_0_")).toBe('meta mark set 0x330 ip saddr . meta mark @persist ct mark set meta mark comment "FARM_sticky_0_"');
    expect(printRule([{ match: { op: "in", left: { ct: { key: "state" } }, right: "new" } }, { vmap: { key: { payload: { protocol: "ip", field: "daddr" } }, data: "@dispatch_all" } }])).toBe("ct state new ip daddr vmap @dispatch_all");
    // Anything outside natfarm's vocabulary prints as itself in JSON: never equal to a wanted rule.
    expect(printRule([{ queue: { num: 1 } }])).toBe('?{"queue":{"num":1}}');
  });

  it("keeps only natfarm's table and reads element comments and counters", () => {
    const live = parseNftJson(JSON.stringify({ nftables: [
      { table: { family: "ip", name: "other", handle: 1 } },
      { chain: { family: "ip", table: "other", name: "x", handle: 2 } },
      { table: { family: "ip", name: "natfarm", handle: 3 } },
      { set: { family: "ip", name: "backends", table: "natfarm", type: "mark", handle: 4, elem: [{ elem: { val: 524, comment: "FARM_app_0_", counter: { packets: 7, bytes: 420 } } }] } },
    ] }));
    expect([...live.chains.keys()]).toEqual([]);
    expect(live.sets.get("backends")!.elements).toEqual([{ key: "0x20c", value: null, comment: "FARM_app_0_", counter: { packets: 7, bytes: 420 } }]);
  });
});

describe("nftables applier through a recording fake nft", () => {
  const target: Target = { kind: "netns", name: "fake-nft" };
  const setup = async () => {
    forgetRemembered();
    const kernel = new FakeNft();
    const fake = fakeNftRunner(kernel);
    await applyNftFarms(ALL, { target, runner: fake.run });
    fake.calls.length = 0;
    return { kernel, fake };
  };
  const writes = (fake: ReturnType<typeof fakeNftRunner>) => fake.calls.filter((c) => c.args.includes("-f"));

  it("an unchanged apply reads once and writes nothing", async () => {
    const { fake } = await setup();
    const r = await applyNftFarms(ALL, { target, runner: fake.run });
    expect(r.changed).toBe(false);
    expect(writes(fake)).toHaveLength(0);
  });

  it("a one-farm change writes one transaction with only that farm's chain and elements, without reading the table", async () => {
    const { kernel, fake } = await setup();
    const next = ALL.map((f) => (f.name === "hash" ? { ...f, mode: "dnat" as const } : f));
    const r = await applyNftFarms(next, { target, runner: fake.run, only: ["hash"] });
    expect(r.planned).toBe("remembered");
    expect(fake.calls.filter((c) => c.args.includes("list"))).toHaveLength(0);
    expect(writes(fake)).toHaveLength(1);
    expect(r.payload).toContain("delete element ip natfarm snat_vip { 0x310, 0x311, 0x312 }");
    expect(r.payload).not.toContain("chain");
    expect(r.farmsChanged).toEqual(["hash"]);
    expect(kernel.table!.sets.get("snat_vip")!.elements.has("0x310")).toBe(false);
    expect(kernel.table!.sets.get("snat_vip")!.elements.has("0x20c")).toBe(true);
  });

  it("a refused transaction changes nothing and names nft's message; a stale remembered state is read again", async () => {
    const { kernel, fake } = await setup();
    const before = kernel.json();
    const next = ALL.map((f) => (f.name === "rr" ? { ...f, ports: "8080" } : f));
    await expect(applyNftFarms(next, { target, runner: fake.run, injectFault: true })).rejects.toBeInstanceOf(NftApplyError);
    expect(kernel.json()).toBe(before);
    // Someone else's transaction replaced the stamp: the remembered plan is refused, then planned from a read.
    await applyNftFarms(ALL, { target, runner: fake.run });
    kernel.table!.sets.get("stamp")!.elements = new Map([["0x99", { value: null }]]);
    const r = await applyNftFarms(next, { target, runner: fake.run, only: ["rr"] });
    expect(r.planned).toBe("read");
    expect(writes(fake).length).toBeGreaterThanOrEqual(2);
    expect([...kernel.table!.sets.get("dispatch")!.elements.keys()]).toContain("198.51.100.40 . tcp . 8080");
  });

  it("a scoped change leaves farms it does not name as the kernel has them (a pending farm is not made live)", async () => {
    const { kernel, fake } = await setup();
    const pending = { name: "pending", vip: "198.51.100.99", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80 }] } satisfies FarmInput;
    const next = [...ALL.map((f) => (f.name === "prio" ? { ...f, mode: "nat" as const } : f)), pending];
    const r = await applyNftFarms(next, { target, runner: fake.run, only: ["prio"] });
    expect(r.farmsChanged).toEqual(["prio"]);
    expect(kernel.table!.chains.has("farm_pending")).toBe(false);
    expect((await driftNft(next, { target, runner: fake.run })).farms.find((f) => f.farm === "pending")!.inSync).toBe(false);
  });

  it("removing every farm deletes natfarm's table and nothing else", async () => {
    const { kernel, fake } = await setup();
    const r = await applyNftFarms([], { target, runner: fake.run });
    expect(r.payload).toBe("delete table ip natfarm\n");
    expect(kernel.table).toBeNull();
  });

  it("the planner rewrites a drained backend's farm chain and keeps its translations", () => {
    const farms = resolveMarks(FarmListSchema.parse([guideFarm()]));
    const drained = resolveMarks(FarmListSchema.parse([{ ...guideFarm(), backends: guideFarm().backends!.map((b, i) => (i === 0 ? { ...b, state: "maintenance" as const } : b)) }]));
    const kernel = new FakeNft();
    kernel.apply(renderFullPayload(renderNft(farms)));
    const plan = planNft(renderNft(drained), parseNftJson(kernel.json()));
    expect(plan.commands.join("\n")).toContain("add rule ip natfarm farm_app meta mark set 0x20d");
    expect(plan.commands.join("\n")).not.toContain("dnat_port");
  });
});

describe("nftables read-back of aligned mark ranges", () => {
  it("an interval mark range nft prints as a prefix (weight 2 at an even base) reads back as the range natfarm wrote, so an unchanged apply plans nothing", () => {
    const elem = [[{ elem: { val: { prefix: { addr: 0x406000, len: 31 } }, comment: "FARM_w_0_" } }, 0x203]];
    const live = parseNftJson(JSON.stringify({ nftables: [
      { table: { family: "ip", name: "natfarm" } },
      { map: { family: "ip", table: "natfarm", name: "slots", type: "mark", map: "mark", flags: ["interval"], elem } },
    ] }));
    expect(live.sets.get("slots")!.elements).toEqual([{ key: "0x406000-0x406001", value: "0x203", comment: "FARM_w_0_" }]);
  });
});
