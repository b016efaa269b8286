import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FarmValidationError } from "../../lib/applier/errors.ts";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { applyNftFarms, driftNft, forgetRemembered, NftApplyError, readNft, renderNft } from "../../lib/nftables/index.ts";
import { renderTableBlock } from "../../lib/nftables/render.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { guideFarm, MIXED_FARMS, SCHEDULER_FARMS } from "../helpers/farms.ts";
import { createNetns, deleteNetns, iptables, iptablesRestore, iptablesSave } from "../helpers/netns.ts";

/** The nftables engine in a bare namespace of its own: read-back, ownership, atomicity, incremental applies, drift. */
let ns: { name: string; target: Target };
beforeAll(async () => {
  ns = await createNetns("nfte");
});
afterAll(async () => {
  if (ns) await deleteNetns(ns.name);
});

const nft = async (args: string[], input?: string) => (await runPrivileged("nft", args, { target: ns.target, input })).stdout;
/** natfarm's table without counters or persistent clients: what must not move when nothing should change. */
const table = () => nft(["-s", "list", "table", "ip", "natfarm"]).catch(() => "");
const ALL = [guideFarm("nat"), ...MIXED_FARMS, ...SCHEDULER_FARMS];

describe("nftables: the rendered table is what the kernel gives back", () => {
  it("every scheduler, mode, protocol and port form round-trips: the re-apply plans nothing", async () => {
    const r = await applyNftFarms(ALL, { target: ns.target });
    expect(r.changed).toBe(true);
    forgetRemembered();
    const again = await applyNftFarms(ALL, { target: ns.target });
    expect(again.planned).toBe("read");
    expect(again.changed, again.payload).toBe(false);
    expect((await driftNft(ALL, { target: ns.target })).inSync).toBe(true);
    // The stopped farm has nothing, not even a chain.
    expect(await table()).not.toContain("farm_off");
  });

  it("one verdict map dispatches by VIP . protocol . port, ranges and lists as intervals", async () => {
    const live = await readNft(ns.target);
    const keys = live.sets.get("dispatch")!.elements.map((e) => `${e.key} : ${e.value}`);
    expect(keys).toContain("198.51.100.250 . udp . 8000-8100 : goto farm_web");
    expect(keys).toContain("198.51.100.250 . udp . 80 : goto farm_web");
    expect(live.sets.get("dispatch_all")!.elements.map((e) => e.key)).toEqual(["198.51.100.251"]);
  });
});

describe("nftables: ownership", () => {
  const FOREIGN_NFT = "table ip foreign {\n\tchain c {\n\t\ttype filter hook prerouting priority -200; policy accept;\n\t\tip saddr 192.0.2.9 counter accept\n\t}\n}\n";
  const FOREIGN_IPT = "*mangle\n-A PREROUTING -s 192.0.2.7/32 -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n*nat\n-A POSTROUTING -s 192.0.2.8/32 -j MASQUERADE\nCOMMIT\n*filter\n-A INPUT -s 192.0.2.6/32 -j ACCEPT\nCOMMIT\n";
  const foreignNft = () => nft(["-s", "list", "table", "ip", "foreign"]);
  const foreignIpt = async () => (await iptablesSave(ns.target)).split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/g, "")).join("\n");
  const tables = async () => (await nft(["list", "tables"])).split("\n").filter((l) => l && !l.includes("natfarm")).sort();

  it("a foreign nft table and foreign iptables rules survive apply, re-apply with changes, a scoped change, farm removal and flush", async () => {
    await nft(["-f", "-"], FOREIGN_NFT);
    await iptablesRestore(ns.target, FOREIGN_IPT);
    const before = { nft: await foreignNft(), ipt: await foreignIpt(), tables: await tables() };
    const check = async () => {
      expect(await foreignNft()).toBe(before.nft);
      expect(await foreignIpt()).toBe(before.ipt);
      expect(await tables()).toEqual(before.tables);
    };
    await applyNftFarms(ALL, { target: ns.target });
    await check();
    const changed = ALL.map((f) => (f.name === "app" ? { ...f, mode: "dnat" as const } : f));
    await applyNftFarms(changed, { target: ns.target });
    await check();
    await applyNftFarms(changed.map((f) => (f.name === "rr" ? { ...f, ports: "81" } : f)), { target: ns.target, only: ["rr"] });
    await check();
    await applyNftFarms(changed.filter((f) => f.name !== "web"), { target: ns.target });
    await check();
    await applyNftFarms([], { target: ns.target });
    await check();
    expect(await table()).toBe("");
    expect(await iptables(ns.target, ["-t", "mangle", "-S"])).toContain("192.0.2.7");
  });
});

describe("nftables: atomicity", () => {
  it("a transaction nft refuses leaves natfarm's table exactly as it was and reports nft's message", async () => {
    await applyNftFarms(ALL, { target: ns.target });
    const before = await table();
    const next = ALL.map((f) => (f.name === "app" ? { ...f, ports: "8443" } : f));
    const e = await applyNftFarms(next, { target: ns.target, injectFault: true }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NftApplyError);
    expect((e as Error).message).toMatch(/nft rejected the change: .*natfarm_injected_fault/s);
    expect(await table()).toBe(before);
    // The same change without the fault goes through.
    expect((await applyNftFarms(next, { target: ns.target })).farmsChanged).toEqual(["app"]);
  });

  it("invalid farms are refused before the kernel is touched", async () => {
    const before = await table();
    await expect(applyNftFarms([{ ...guideFarm(), ports: "99999" }], { target: ns.target })).rejects.toBeInstanceOf(FarmValidationError);
    expect(await table()).toBe(before);
  });
});

describe("nftables: incremental applies", () => {
  it("a one-farm change rewrites that farm's chain and elements only, planned from what this process wrote", async () => {
    await applyNftFarms(ALL, { target: ns.target });
    const live = await readNft(ns.target);
    const prioKeys = new Set([...live.sets.values()].flatMap((s) => s.elements.filter((e) => e.comment?.startsWith("FARM_prio_") || e.value === "goto farm_prio").map((e) => `${s.name} ${e.key}`)));
    const next = ALL.map((f) => (f.name === "prio" ? { ...f, backends: f.backends!.map((b, i) => (i === 0 ? { ...b, weight: 5 } : b)) } : f));
    const r = await applyNftFarms(next, { target: ns.target, only: ["prio"] });
    expect(r.planned).toBe("remembered");
    expect(r.farmsChanged).toEqual(["prio"]);
    const touched = r.payload.split("\n").filter((l) => l && !l.includes(" stamp "));
    for (const line of touched) {
      const del = /^delete element ip natfarm (\S+) \{ (.*) \}$/.exec(line);
      if (del) for (const key of del[2]!.split(", ")) expect(prioKeys.has(`${del[1]} ${key}`), line).toBe(true);
      else expect(line, line).toMatch(/farm_prio|FARM_prio_/);
    }
    expect(r.payload).toMatch(/^flush chain ip natfarm farm_prio$/m);
  });

  it("another writer's change refuses a plan from the remembered state: the table is read and planned again", async () => {
    await applyNftFarms(ALL, { target: ns.target });
    // A second natfarm process (here: a hand-written transaction with a new stamp) moves farm rr to port 81.
    const live = await readNft(ns.target);
    const stamp = live.sets.get("stamp")!.elements[0]!.key;
    await nft(["-f", "-"], `delete element ip natfarm dispatch { 198.51.100.40 . tcp . 80 }\nadd element ip natfarm dispatch { 198.51.100.40 . tcp . 81 : goto farm_rr }\ndelete element ip natfarm stamp { ${stamp} }\nadd element ip natfarm stamp { 0x1234 }\n`);
    const next = ALL.map((f) => (f.name === "rr" ? { ...f, scheduler: "weight" as const } : f));
    const r = await applyNftFarms(next, { target: ns.target, only: ["rr"] });
    expect(r.planned).toBe("read");
    const keys = (await readNft(ns.target)).sets.get("dispatch")!.elements.filter((e) => e.value === "goto farm_rr").map((e) => e.key);
    expect(keys).toEqual(["198.51.100.40 . tcp . 80"]);
    expect((await driftNft(next, { target: ns.target })).inSync).toBe(true);
  });

  it("drift: an element deleted by hand is reported for its farm and put back by apply; a damaged skeleton is repaired", async () => {
    await applyNftFarms(ALL, { target: ns.target });
    await nft(["delete", "element", "ip", "natfarm", "dnat_port", "{ 0x20d }"]);
    await nft(["flush", "chain", "ip", "natfarm", "pre_dnat"]);
    const d = await driftNft(ALL, { target: ns.target });
    expect(d.inSync).toBe(false);
    expect(d.farms.filter((f) => !f.inSync).map((f) => f.farm)).toEqual(["app"]);
    forgetRemembered();
    await applyNftFarms(ALL, { target: ns.target });
    expect((await driftNft(ALL, { target: ns.target })).inSync).toBe(true);
  });

  it("backends without explicit marks keep the marks the kernel gave them", async () => {
    const farms = [{ name: "keep", vip: "198.51.100.90", ports: "80", protocol: "tcp" as const, mode: "dnat" as const, backends: [{ ip: "203.0.113.10", port: 80 }, { ip: "203.0.113.11", port: 80 }] }];
    await applyNftFarms(farms, { target: ns.target });
    const marks = (await readNft(ns.target)).sets.get("dnat_port")!.elements.map((e) => `${e.key} ${e.value}`).sort();
    forgetRemembered();
    // A backend added in front: the others keep their marks.
    await applyNftFarms([{ ...farms[0]!, backends: [{ ip: "203.0.113.12", port: 80 }, ...farms[0]!.backends] }], { target: ns.target });
    const now = (await readNft(ns.target)).sets.get("dnat_port")!.elements.map((e) => `${e.key} ${e.value}`);
    for (const m of marks) expect(now).toContain(m);
  });

  it("the full payload loads into an empty table as one transaction", async () => {
    await applyNftFarms([], { target: ns.target });
    const block = renderTableBlock(renderNft(resolveMarks(FarmListSchema.parse(ALL))));
    await nft(["-f", "-"], block);
    expect((await driftNft(ALL, { target: ns.target })).farms.every((f) => f.inSync)).toBe(true);
    await applyNftFarms([], { target: ns.target });
  });
});
