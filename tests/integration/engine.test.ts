import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyFarms, ApplyError, driftReport, flushFarms, FarmValidationError, readNatfarmTables, readTables, type TablesSnapshot } from "../../lib/applier/index.ts";
import { foreignLines } from "../../lib/netfilter/parse.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { farmChain } from "../../lib/netfilter/layout.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { guideFarm } from "../helpers/farms.ts";
import { createNetns, deleteAllNetns, iptables, iptablesRestore, iptablesSave } from "../helpers/netns.ts";

/** Real netfilter in throwaway namespaces: what the kernel holds after each apply. */
afterAll(deleteAllNetns);

const listing = (target: Target, table: string) => iptables(target, ["-t", table, "-n", "-L"]);
const rulesOnly = (save: string) => save.split("\n").filter((l) => l && !l.startsWith("#"));

function farm(name: string, vip: string, port: number, weights: number[], extra: Partial<FarmInput> = {}): FarmInput {
  return {
    name,
    vip,
    ports: String(port),
    protocol: "tcp",
    mode: "dnat",
    backends: weights.map((weight, i) => ({ ip: `203.0.113.${10 + i}`, port, weight })),
    ...extra,
  };
}

describe("the guide's example in a namespace", () => {
  let target: Target;
  beforeAll(async () => ({ target } = await createNetns()));

  it("dnat: mangle and nat show the guide's probabilities, marks, comments and targets", async () => {
    const r = await applyFarms([guideFarm("dnat")], { target });
    expect(r.changed).toBe(true);
    const mangle = await listing(target, "mangle");
    expect(mangle).toMatch(/CONNMARK .* CONNMARK restore/);
    const m1 = mangle.search(/MARK .*192\.168\.101\.250\s+statistic mode random probability 1\.00000000000 multiport dports 443 \/\* FARM_app_1_ \*\/ MARK set 0x20d/);
    const m0 = mangle.search(/MARK .*192\.168\.101\.250\s+statistic mode random probability 0\.50000000000 multiport dports 443 \/\* FARM_app_0_ \*\/ MARK set 0x20c/);
    expect(m1).toBeGreaterThan(-1);
    expect(m0).toBeGreaterThan(m1); // the guide's order: last backend first
    expect(mangle).toMatch(/CONNMARK .*state NEW .*CONNMARK save/);
    const nat = await listing(target, "nat");
    expect(nat).toMatch(/DNAT .*mark match 0x20c \/\* FARM_app_0_ \*\/ to:192\.168\.1\.10:443/);
    expect(nat).toMatch(/DNAT .*mark match 0x20d \/\* FARM_app_1_ \*\/ to:192\.168\.1\.11:443/);
    expect(nat).not.toMatch(/SNAT/);
  });

  it("nat mode adds SNAT to the VIP for each backend mark", async () => {
    await applyFarms([guideFarm("nat")], { target });
    const nat = await listing(target, "nat");
    expect(nat).toMatch(/SNAT .*mark match 0x20c \/\* FARM_app_0_ \*\/ to:192\.168\.101\.250/);
    expect(nat).toMatch(/SNAT .*mark match 0x20d \/\* FARM_app_1_ \*\/ to:192\.168\.101\.250/);
    expect(nat).toMatch(/DNAT .*mark match 0x20c \/\* FARM_app_0_ \*\/ to:192\.168\.1\.10:443/);
  });

  it("applying the same farms again writes nothing", async () => {
    const before = await iptablesSave(target);
    const r = await applyFarms([guideFarm("nat")], { target });
    expect(r.changed).toBe(false);
    expect(r.payload).toBe("");
    expect(rulesOnly(await iptablesSave(target))).toEqual(rulesOnly(before));
    expect((await driftReport([guideFarm("nat")], { target })).inSync).toBe(true);
  });
});

describe("ownership: everyone else's rules stay byte-identical", () => {
  const FOREIGN = [
    "*filter",
    ":FOREIGN-FW - [0:0]",
    "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
    "-A FORWARD -j FOREIGN-FW",
    "-A FOREIGN-FW -s 203.0.113.0/24 -j ACCEPT",
    "COMMIT",
    "*mangle",
    ":FOREIGN-MANGLE - [0:0]",
    "-A PREROUTING -p udp -m udp --dport 53 -j FOREIGN-MANGLE",
    "-A FOREIGN-MANGLE -j MARK --set-xmark 0x1/0xff",
    "-A POSTROUTING -o lo -j RETURN",
    "COMMIT",
    "*nat",
    ":FOREIGN-NAT - [0:0]",
    "-A PREROUTING -d 198.51.100.9/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 203.0.113.99:80",
    "-A POSTROUTING -s 203.0.113.0/24 -j FOREIGN-NAT",
    "-A FOREIGN-NAT -j MASQUERADE",
    "COMMIT",
    "",
  ].join("\n");

  it("survives apply, re-apply with changes, farm removal and flush", async () => {
    const { target } = await createNetns();
    await iptablesRestore(target, FOREIGN);
    const foreign = async () => foreignLines(await iptablesSave(target));
    const before = await foreign();
    expect(before.join("\n")).toContain("FOREIGN-NAT");

    const a = farm("alpha", "198.51.100.250", 80, [1, 2, 3]);
    const b = farm("beta", "198.51.100.251", 443, [1, 1], { mode: "nat" });
    await applyFarms([a, b], { target });
    expect(await foreign()).toEqual(before);
    // natfarm's entry jumps come first in the built-in chains, the foreign rules follow unchanged.
    expect(await iptables(target, ["-t", "mangle", "-S", "PREROUTING"])).toMatch(/-j NATFARM-PREROUTING\n-A PREROUTING -p udp/);

    await applyFarms([{ ...a, backends: a.backends!.slice(0, 2) }, { ...b, mode: "dnat" }], { target });
    expect(await foreign()).toEqual(before);

    await applyFarms([b], { target });
    expect(await foreign()).toEqual(before);
    expect(await iptablesSave(target)).not.toContain("FARM_alpha_");

    await flushFarms({ target });
    expect(await foreign()).toEqual(before);
    expect(await iptablesSave(target)).not.toMatch(/NATFARM|FARM_/);
  });
});

describe("atomicity: a refused apply leaves the previous rules in place", () => {
  // The payload goes nat (grow) → mangle → nat (shrink): a fault in the first
  // nat section commits nothing; one in mangle or in the last section finds
  // earlier sections committed, and they are put back.
  it.each([
    ["nat", "nothing-committed"],
    ["mangle", "rolled-back"],
    ["last", "rolled-back"],
  ] as const)("fault injected in %s: kernel unchanged, iptables' error reported", async (where, outcome) => {
    const { target } = await createNetns();
    const a = farm("alpha", "198.51.100.250", 80, [1, 1]);
    const gone = farm("gamma", "198.51.100.252", 80, [1]);
    await applyFarms([a, gone], { target });
    const before = rulesOnly(await iptablesSave(target));
    // Adds a backend and a farm and removes one: every section of the payload has work.
    const changed = [{ ...a, backends: [...a.backends!, { ip: "203.0.113.12", port: 80, weight: 5 }] }, farm("beta", "198.51.100.251", 80, [1])];
    const dry = await applyFarms(changed, { target, dryRun: true });
    expect(dry.tables).toEqual(["nat", "mangle", "nat"]);
    const err = await applyFarms(changed, { target, injectFault: where }).catch((e) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).iptablesMessage).toMatch(/iptables-restore.*(NATFARM-INJECTED-FAULT|Couldn't load target|does not exist)/s);
    expect((err as ApplyError).rolledBack).toBe(outcome);
    expect(rulesOnly(await iptablesSave(target))).toEqual(before);
    // and the same change without the fault goes through
    expect((await applyFarms(changed, { target })).changed).toBe(true);
  });
});

describe("incremental applies", () => {
  let target: Target;
  const farms = Array.from({ length: 40 }, (_, i) =>
    farm(`f${i}`, `198.51.100.${100 + i}`, 80, [1, 2, 3, 4], { backends: [1, 2, 3, 4].map((w, k) => ({ ip: `203.0.113.${10 + k}`, port: 80, weight: w, mark: 0x300 + i * 4 + k })) }),
  );
  beforeAll(async () => {
    ({ target } = await createNetns());
    await applyFarms(farms, { target });
  });

  it("a one-farm change reads and rewrites only that farm's chain", async () => {
    const changed = farms.map((f) => (f.name === "f7" ? { ...f, backends: f.backends!.map((b) => ({ ...b, weight: 10 })) } : f));
    const r = await applyFarms(changed, { target, only: ["f7"] });
    expect(r.mode).toBe("scoped");
    expect(r.changed).toBe(true);
    expect(r.stats.chainsRewritten).toBe(1); // the farm's chain; its translations did not change
    expect(r.payload).toContain("FARM_f7_0_");
    expect(r.payload).not.toMatch(/-A NATFARM-PREROUTING|:NATFARM-PREROUTING/);
    expect((await driftReport(changed, { target })).inSync).toBe(true);
    expect((await applyFarms(farms, { target, only: ["f7"] })).changed).toBe(true);
  });

  it("a farm at a new VIP gets its chain and a jump in the tree node above it, and loses both when removed", async () => {
    const extra = farm("newcomer", "198.51.100.200", 8080, [1], { backends: [{ ip: "203.0.113.20", port: 8080, weight: 1, mark: 0x900 }] });
    const chain = farmChain("newcomer");
    const added = await applyFarms([...farms, extra], { target, only: ["newcomer"] });
    expect(added.mode).toBe("scoped");
    expect(added.payload).toMatch(new RegExp(`^:${chain} - `, "m"));
    expect(added.payload).toMatch(new RegExp(`^\\[0:0\\] -A NATFARM-VIP\\S* -d 198\\.51\\.100\\.200/32 -p tcp -m multiport --dports 8080 -j ${chain}$`, "m"));
    // The entry chains and hooks are not written: a new farm changes only the tree below them.
    expect(added.payload).not.toMatch(/NATFARM-PREROUTING|NATFARM-POSTROUTING|-I PREROUTING/);
    expect((await driftReport([...farms, extra], { target })).inSync).toBe(true);

    const removed = await applyFarms(farms, { target, only: ["newcomer"] });
    expect(removed.payload).toMatch(new RegExp(`^-X ${chain}$`, "m"));
    expect(removed.payload).not.toMatch(/NATFARM-PREROUTING|NATFARM-POSTROUTING/);
    expect(await iptablesSave(target)).not.toContain("newcomer");
    expect((await driftReport(farms, { target })).inSync).toBe(true);
  });

  it("a refused scoped change is undone, also in the entry chains it only assumed", async () => {
    const before = rulesOnly(await iptablesSave(target));
    const changed = farms.map((f) => (f.name === "f9" ? { ...f, mode: "nat" as const } : f));
    const err = await applyFarms(changed, { target, only: ["f9"], injectFault: "nat" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect(rulesOnly(await iptablesSave(target))).toEqual(before);
  });

  it("natfarm's tables can be read chain by chain: one farm's chains and paths, or the trees breadth first up to a rule budget", async () => {
    const specs = (snap: TablesSnapshot) => snap.tables.flatMap((t) => t.chains.filter((c) => c.owned).flatMap((c) => c.rules.map((r) => `${t.name} ${c.name} ${r.spec}`)));
    const full = await readTables(target);
    const one = await readNatfarmTables(target, { farm: "f3" });
    const names = one.tables.flatMap((t) => t.chains.map((c) => c.name));
    expect(names).toContain(farmChain("f3"));
    expect(names).toContain("NATFARM-DST-0300");
    // Only the chains on f3's paths: its chain, its mark block with the group and root above, the tree nodes down to it.
    expect(names.length).toBeLessThanOrEqual(10);
    expect(specs(one).filter((l) => l.includes("FARM_f3_"))).toEqual(specs(full).filter((l) => l.includes("FARM_f3_")));
    const some = await readNatfarmTables(target, { maxRules: 20 });
    expect(some.unreadChains).toBeGreaterThan(0);
    expect(some.tables[0]!.chains.map((c) => c.name)).toContain("NATFARM-PREROUTING");
    const all = await readNatfarmTables(target, { maxRules: 100_000 });
    expect(all.unreadChains).toBe(0);
    expect(specs(all).sort()).toEqual(specs(full).sort());
  });

  it("drift: a rule deleted by hand is reported for its farm and put back by apply", async () => {
    const save = await iptablesSave(target, "nat");
    const line = save.split("\n").find((l) => l.includes("FARM_f3_2_") && l.includes("DNAT --to"))!;
    await iptables(target, ["-t", "nat", "-D", ...line.replace(/^-A /, "").split(" ").map((s) => s)]);
    const report = await driftReport(farms, { target });
    expect(report.inSync).toBe(false);
    const f3 = report.farms.find((f) => f.farm === "f3")!;
    expect(f3.status).toBe("differs");
    expect(f3.missing.join("\n")).toContain("FARM_f3_2_");
    expect(report.farms.filter((f) => f.status !== "in-sync").map((f) => f.farm)).toEqual(["f3"]);
    await applyFarms(farms, { target });
    expect((await driftReport(farms, { target })).inSync).toBe(true);
  });

  it("backends without explicit marks keep the marks the kernel gave them", async () => {
    const { target: t2 } = await createNetns();
    const base = farm("keep", "198.51.100.50", 80, [1, 1]);
    const first = await applyFarms([base], { target: t2 });
    const marks = first.farms[0]!.backends.map((b) => b.mark);
    const grown = { ...base, backends: [{ ip: "203.0.113.30", port: 80, weight: 1 }, ...base.backends!] };
    const second = await applyFarms([grown], { target: t2 });
    const after = new Map(second.farms[0]!.backends.map((b) => [b.ip, b.mark]));
    expect(after.get("203.0.113.10")).toBe(marks[0]);
    expect(after.get("203.0.113.11")).toBe(marks[1]);
    expect(new Set(after.values()).size).toBe(3);
  });
});

describe("one apply at a time", () => {
  it("concurrent applies to one target are serialized, in order, and all succeed", async () => {
    const { target } = await createNetns();
    const sets = Array.from({ length: 6 }, (_, i) => [farm(`c${i}`, `198.51.100.${60 + i}`, 80, [1, i + 1]), farm("shared", "198.51.100.90", 443, [i + 1, 1])]);
    const results = await Promise.all(sets.map((farms) => applyFarms(farms, { target })));
    expect(results.every((r) => r.changed)).toBe(true);
    expect((await driftReport(sets.at(-1)!, { target })).inSync).toBe(true);
  });
});

describe("the applier validates its own input", () => {
  it("refuses invalid farms before touching the kernel", async () => {
    const { target } = await createNetns();
    const before = await iptablesSave(target);
    const err = await applyFarms([{ ...guideFarm(), vip: "2001:db8::1" }], { target }).catch((e) => e);
    expect(err).toBeInstanceOf(FarmValidationError);
    expect((err as Error).message).toMatch(/farm "app" › vip: IPv6/);
    expect(rulesOnly(await iptablesSave(target))).toEqual(rulesOnly(before));
  });
});
