import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { applyFarms, ApplyError } from "../../lib/applier/index.ts";
import { targetLockFile } from "../../lib/applier/lock.ts";
import { forgetNodes } from "../../lib/applier/scoped.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { renderFullPayload, renderRuleset } from "../../lib/netfilter/render.ts";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { FakeKernel, fakeRunner, type FakeRunner } from "../helpers/fake-kernel.ts";
import { MIXED_FARMS } from "../helpers/farms.ts";

/**
 * The applier through its Runner port on a recording fake kernel, without
 * root: scoped applies, rollback, idempotence, the journal, and the shape of
 * the payloads (every jump to a declared chain, no chain left unreferenced).
 */
process.env.NATFARM_LOCK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-fake-locks-"));
const target: Target = { kind: "netns", name: "fake" };
let kernel: FakeKernel;
let fake: FakeRunner;
beforeEach(() => {
  kernel = new FakeKernel();
  fake = fakeRunner(kernel);
});
const apply = (farms: FarmInput[], opts: { only?: string[]; dryRun?: boolean } = {}) => applyFarms(farms, { target, runner: fake.run, ...opts });
const saved = () => kernel.save("mangle") + kernel.save("nat");

let n = 0;
const farm = (name: string, extra: Partial<FarmInput> = {}): FarmInput => {
  n++;
  return { name, vip: `198.51.100.${n}`, ports: "80", protocol: "tcp", mode: "nat", backends: [{ ip: "203.0.113.10", port: 80, weight: 1, mark: `0x${(0x200 + n).toString(16)}` }], ...extra };
};

/** Two farms whose rules share chains (the same mark block, neighbour VIPs under one tree node): a scoped change of one rewrites chains holding the other's rules. */
function sameShardNames(): [string, string] {
  return ["s1", "s2"];
}

describe("applier through the fake kernel", () => {
  it("a scoped apply writes only the named farm: a pending farm in the same shard stays out of the kernel", async () => {
    const [a, b] = sameShardNames();
    const fa = farm(a);
    const fb = farm(b, { backends: [{ ip: "203.0.113.20", port: 80, weight: 1, mark: "0x3f0" }, { ip: "203.0.113.21", port: 80, weight: 1, mark: "0x3f1" }] });
    const r = await apply([fa, fb], { only: [a] });
    expect(r.mode).toBe("scoped");
    expect(r.farmsChanged).toEqual([a]);
    expect(saved()).toContain(`FARM_${a}_0_`);
    expect(saved()).not.toContain(`FARM_${b}_`);
    // b is applied on its own later; changing a again keeps b's rules as the kernel has them
    await apply([fa, fb], { only: [b] });
    const moved = { ...fa, backends: [{ ...fa.backends![0]!, ip: "203.0.113.99" }] };
    const bRule = (p: string) => new RegExp(`probability ${p} .*FARM_${b}_0_`);
    expect(saved()).toMatch(bRule("0\\.50000000000"));
    const r2 = await apply([moved, { ...fb, backends: [{ ...fb.backends![0]!, weight: 7 }, fb.backends![1]!] }], { only: [a] });
    expect(r2.farmsChanged).toEqual([a]);
    expect(saved()).toContain("203.0.113.99");
    // b's weight change (7:1 would make its first backend's probability 0.875) was not written: b keeps its kernel rules.
    expect(saved()).toMatch(bRule("0\\.50000000000"));
    expect(saved()).not.toMatch(bRule("0\\.87500000000"));
  });

  it("a scoped removal keeps the other farms of its shard, and their shard jump", async () => {
    const [a, b] = sameShardNames();
    const fa = farm(a);
    const fb = farm(b);
    await apply([fa, fb]);
    const r = await apply([fb], { only: [a] });
    expect(r.farmsChanged).toEqual([a]);
    expect(saved()).not.toContain(`FARM_${a}_`);
    expect(saved()).toContain(`FARM_${b}_0_`);
    expect((await apply([fb])).changed).toBe(false);
  });

  it("an unchanged apply writes nothing (no restore at all)", async () => {
    await apply(MIXED_FARMS);
    const before = fake.calls.length;
    const r = await apply(MIXED_FARMS);
    expect(r.changed).toBe(false);
    expect(fake.calls.slice(before).filter((c) => c.program === "iptables-restore")).toEqual([]);
  });

  it.each([1, 2, 3])("a payload refused at section %i leaves the kernel as it was", async (section) => {
    const a = farm("alpha");
    const gone = farm("gone");
    await apply([a, gone]);
    const before = saved();
    fake.refuseSection = section;
    const changed = [{ ...a, mode: "dnat" as const, backends: [...a.backends!, { ip: "203.0.113.11", port: 80, weight: 2, mark: "0x2ff" }] }, farm("beta")];
    const err = await apply(changed).catch((e) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).rolledBack).toBe(section === 1 ? "nothing-committed" : "rolled-back");
    expect(saved().replace(/\[\d+:\d+\] /g, "")).toBe(before.replace(/\[\d+:\d+\] /g, ""));
  });

  it("an apply that finds a journal reports the interrupted apply, and clears it", async () => {
    const journal = targetLockFile(target).replace(/\.lock$/, ".journal");
    fs.writeFileSync(journal, JSON.stringify({ pid: 4242, startedAt: "2026-12-01T00:00:00Z", farms: 5000, only: null, tables: ["nat", "mangle", "nat"] }));
    const r = await apply([farm("one")]);
    expect(r.interrupted?.pid).toBe(4242);
    expect(r.warnings.join("\n")).toMatch(/pid 4242.*interrupted/);
    expect(fs.existsSync(journal)).toBe(false);
  });

  // Farms of 4 backends on 250 VIPs, enough for a deep tree and several sections per table.
  const bench = (count: number): FarmInput[] =>
    Array.from({ length: count }, (_, i) => ({
      name: `b${i}`,
      vip: `198.51.100.${1 + (i % 250)}`,
      ports: String(1000 + Math.floor(i / 250)),
      protocol: "tcp",
      mode: i % 2 ? "nat" : "dnat",
      backends: [1, 2, 3, 4].map((w, k) => ({ ip: `203.0.113.${10 + k}`, port: 8080, weight: w, mark: `0x${(0x200 + i * 4 + k).toString(16)}` })),
    }));

  it("an unchanged whole re-apply reads the tables with one save and lists no chain; a rule changed behind natfarm's back is put back", async () => {
    const farms = bench(600);
    await apply(farms);
    const before = saved();
    fake.calls.length = 0;
    const again = await apply(farms);
    expect(again.changed).toBe(false);
    expect(again.farmsChanged).toEqual([]);
    expect(fake.calls.filter((c) => c.program === "iptables-save").map((c) => c.args.join(" "))).toEqual(["-c"]);
    expect(fake.calls.filter((c) => c.program !== "iptables-save" && c.program !== "ip")).toEqual([]);
    // A weight changed by hand in one farm's chain, and a hook removed: both put back by the next whole apply.
    const chain = kernel.tables.get("mangle")!.get("NATFARM-F-b7")!;
    chain.rules[0] = { ...chain.rules[0]!, spec: chain.rules[0]!.spec.replace(/--probability \S+/, "--probability 0.90000000000") };
    const pre = kernel.tables.get("nat")!.get("POSTROUTING")!;
    pre.rules = pre.rules.filter((r) => !r.spec.endsWith("-j NATFARM-POSTROUTING"));
    const fixed = await apply(farms);
    expect(fixed.changed).toBe(true);
    expect(fixed.farmsChanged).toEqual(["b7"]);
    expect(saved()).toBe(before);
  });

  it("backends without marks keep the kernel's marks, though the rules are first rendered with marks guessed without it", async () => {
    const unmarked = (f: FarmInput): FarmInput => ({ ...f, backends: f.backends!.map(({ mark: _m, ...b }) => b) });
    const farms = bench(20).map(unmarked);
    await apply(farms);
    const markOf = (ip: string, farmName: string) => new RegExp(`--mark (0x[0-9a-f]+) -m comment --comment FARM_${farmName}_\\d+_ -j DNAT --to-destination ${ip.replace(/\./g, "\\.")}:8080`).exec(saved())?.[1];
    const before = markOf("203.0.113.10", "b3");
    expect(before).toBeDefined();
    fake.calls.length = 0;
    expect((await apply(farms)).changed).toBe(false);
    // A backend put first in b3: a guess without the kernel would hand it b3's old first mark.
    const moved = farms.map((f) => (f.name === "b3" ? { ...f, backends: [{ ip: "203.0.113.99", port: 8080, weight: 1 }, ...f.backends!] } : f));
    const r = await apply(moved);
    expect(r.farmsChanged).toEqual(["b3"]);
    expect(markOf("203.0.113.10", "b3")).toBe(before);
    expect(markOf("203.0.113.99", "b3")).not.toBe(before);
  });

  it("a whole apply goes in many sections; one refused midway has the committed sections put back", async () => {
    const first = await apply(bench(300));
    expect(first.sections).toBeGreaterThan(3);
    const before = saved();
    const next = bench(600).map((f, i) => (i % 3 ? f : { ...f, backends: f.backends!.map((b) => ({ ...b, weight: 9 })) }));
    const dry = await apply(next, { dryRun: true });
    expect(dry.sections).toBeGreaterThan(6);
    fake.refuseSection = Math.floor(dry.sections! / 2);
    await expect(apply(next)).rejects.toMatchObject({ name: "ApplyError", rolledBack: "rolled-back" });
    expect(saved()).toBe(before);
    const r = await apply(next);
    expect(r.changed).toBe(true);
    expect((await apply(next)).changed).toBe(false);
  });

  it("a scoped change that keeps its farm's place reads every chain it needs in one round, however deep the tree", async () => {
    const farms = bench(600);
    await apply(farms);
    // Calls that overlap in time are one round: the fake answers after a pause.
    let inFlight = 0;
    let rounds = 0;
    const slow: typeof fake.run = async (program, args, o) => {
      if (program === "iptables" && inFlight++ === 0) rounds++;
      await new Promise((r) => setTimeout(r, 5));
      try {
        return await fake.run(program, args, o);
      } finally {
        if (program === "iptables") inFlight--;
      }
    };
    const down = farms.map((f) => (f.name === "b321" ? { ...f, backends: f.backends!.map((b, k) => (k === 1 ? { ...b, state: "down" as const } : b)) } : f));
    const r = await applyFarms(down, { target, runner: slow, only: ["b321"] });
    expect(r.mode).toBe("scoped");
    expect(r.farmsChanged).toEqual(["b321"]);
    expect(rounds).toBe(1);
    expect((await apply(down)).changed, "the scoped change ends where a whole apply would").toBe(false);
    // A process that has not seen the tree (or whose hint is stale) descends it a level per round, to the same end.
    forgetNodes(target);
    rounds = 0;
    const up = farms.map((f) => (f.name === "b321" ? { ...f, backends: f.backends!.map((b) => ({ ...b, weight: 5 })) } : f));
    expect((await applyFarms(up, { target, runner: slow, only: ["b321"] })).farmsChanged).toEqual(["b321"]);
    expect(rounds).toBeGreaterThan(1);
    expect((await apply(up)).changed).toBe(false);
  });

  it("refuses a VIP on the target's own address through the same port", async () => {
    fake.addresses = [{ ifname: "eth0", local: "198.51.100.200" }, { ifname: "eth0", local: "198.51.100.201", label: "eth0:vip" }];
    await expect(apply([farm("own", { vip: "198.51.100.200" })])).rejects.toThrow(/address of the balancer itself/);
    await expect(apply([farm("dedicated", { vip: "198.51.100.201" })])).resolves.toMatchObject({ changed: true });
  });
});

describe("rendered payloads are well formed", () => {
  it("every jump targets a declared chain, and every declared chain is jumped to", () => {
    const payload = renderFullPayload(renderRuleset(FarmListSchema.parse(MIXED_FARMS) as never));
    for (const section of payload.split("COMMIT").filter((s) => s.trim())) {
      const declared = new Set([...section.matchAll(/^:(\S+) /gm)].map((m) => m[1]!));
      const jumps = new Set([...section.matchAll(/ -j (NATFARM-\S+)$/gm)].map((m) => m[1]!));
      for (const j of jumps) expect(declared, `jump to ${j}`).toContain(j);
      for (const d of declared) expect(jumps, `chain ${d} is never jumped to`).toContain(d);
    }
  });
});
