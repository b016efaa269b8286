import { describe, expect, it } from "vitest";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { parseChainListing, parseSave, foreignLines } from "../../lib/netfilter/parse.ts";
import { desiredFromRendered, planChanges } from "../../lib/netfilter/plan.ts";
import { chainKey, renderFullPayload, renderRuleset } from "../../lib/netfilter/render.ts";
import type { LiveChain } from "../../lib/netfilter/parse.ts";
import { guideFarm } from "../helpers/farms.ts";

/** The planner against live states written as iptables-save text. */
function liveFrom(save: string) {
  const owned = new Map<string, LiveChain>();
  const builtins = new Map<string, LiveChain>();
  for (const [table, t] of parseSave(save)) {
    for (const c of t.chains.values()) (c.owned ? owned : builtins).set(chainKey(table as "mangle" | "nat", c.name), c);
  }
  return { owned, builtins };
}

function plan(farms: unknown[], save: string) {
  const desired = renderRuleset(resolveMarks(FarmListSchema.parse(farms)));
  const hooks = new Map<string, string[]>();
  for (const h of desired.hooks) hooks.set(chainKey(h.table, h.chain), [...(hooks.get(chainKey(h.table, h.chain)) ?? []), h.spec]);
  const live = liveFrom(save);
  return planChanges({ desired: desiredFromRendered(desired.chains), hooks, live: live.owned, liveBuiltins: live.builtins });
}

/** What iptables-save would print after applying a full payload onto empty tables. */
function saveOf(payload: string, counters = "[0:0]"): string {
  return payload
    .split("\n")
    .map((l) => (l.startsWith("-I ") ? l.replace(/^-I (\S+) 1 /, "-A $1 ") : l))
    .map((l) => (l.startsWith("-A ") ? `${counters} ${l}` : l))
    .join("\n")
    .replace(/\*(mangle|nat)\n/g, (m) => `${m}:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n`);
}

describe("the planner", () => {
  const empty = "*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";

  it("builds everything on empty tables", () => {
    const p = plan([guideFarm()], empty);
    // entry chains (3), the tree roots (3), the farm's chain, a mark group and a block (DNAT only: a dnat farm)
    expect(p.stats.chainsCreated).toBe(9);
    expect(p.payload).toContain("-I PREROUTING 1 -m comment --comment \"natfarm: entry\" -j NATFARM-PREROUTING");
  });

  it("writes nothing when the live rules already match", () => {
    const full = renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse([guideFarm()]))));
    expect(plan([guideFarm()], saveOf(full)).empty).toBe(true);
  });

  it("writes only what changed: dnat → nat adds the SNAT tree, leaves mangle alone", () => {
    const full = renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse([guideFarm()]))));
    const changed = { ...guideFarm("nat") };
    const p = plan([changed], saveOf(full, "[7:420]"));
    expect(p.payload).toMatch(/^:NATFARM-SRC-0200 - \[0:0\]$/m);
    expect(p.payload).toMatch(/^\[0:0\] -A NATFARM-SRC -m mark --mark 0x0\/0xfffff000 -j NATFARM-SRC-0$/m);
    expect(p.payload).not.toMatch(/^\*mangle/m);
    expect(p.stats.chainsCreated).toBe(2);
    expect(p.stats.chainsRewritten).toBe(1); // the SNAT root, empty until now
  });

  it("rewrites a changed chain with the counters of the rules that stay", () => {
    const full = renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse([guideFarm()]))));
    const reweighted = { ...guideFarm(), backends: guideFarm().backends!.map((b, i) => ({ ...b, weight: i + 1 })) };
    const p = plan([reweighted], saveOf(full, "[7:420]"));
    expect(p.tables).toEqual(["mangle"]);
    expect(p.stats.chainsRewritten).toBe(1);
    expect(p.payload).toMatch(/^:NATFARM-F-app - \[0:0\]$/m);
    // backend 1's rule is unchanged (probability 1) and keeps its counters; backend 0's is new
    expect(p.payload).toMatch(/^\[7:420\] -A NATFARM-F-app .*probability 1\.0+ .*FARM_app_1_/m);
    expect(p.payload).toMatch(/^\[0:0\] -A NATFARM-F-app .*probability 0\.33333333349 .*FARM_app_0_/m);
  });

  it("takes everything away, hooks first, when no farm is wanted", () => {
    const full = renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse([guideFarm()]))));
    const p = plan([], saveOf(full));
    expect(p.payload).toMatch(/-D PREROUTING -m comment --comment "natfarm: entry" -j NATFARM-PREROUTING/);
    expect(p.payload).toMatch(/^-X NATFARM-F-app$/m);
    expect(p.stats.chainsDeleted).toBe(9);
  });
});

describe("the parsers", () => {
  it("read iptables-save -c with counters and farm attribution", () => {
    const t = parseSave(
      '*nat\n:PREROUTING ACCEPT [3:180]\n:NATFARM-DNAT-2c - [0:0]\n[12:720] -A NATFARM-DNAT-2c -p tcp -m mark --mark 0x20c -m comment --comment FARM_app_0_ -j DNAT --to-destination 192.168.1.10:443\n[1:60] -A PREROUTING -p tcp -j ACCEPT\nCOMMIT\n',
    );
    const [rule] = t.get("nat")!.chains.get("NATFARM-DNAT-2c")!.rules;
    expect(rule).toMatchObject({ packets: 12, bytes: 720, owned: true, farm: "app", backend: 0, target: "DNAT", comment: "FARM_app_0_" });
    expect(t.get("nat")!.chains.get("PREROUTING")!.rules[0]!.owned).toBe(false);
  });

  it("read iptables -S -v with inline counters", () => {
    const c = parseChainListing("mangle", "-N NATFARM-MARK-2c\n-A NATFARM-MARK-2c -d 192.168.101.250/32 -p tcp -m comment --comment FARM_app_1_ -c 5 300 -j MARK --set-xmark 0x20d/0xffffffff\n")!;
    expect(c.rules[0]).toMatchObject({ packets: 5, bytes: 300, farm: "app", backend: 1, spec: "-d 192.168.101.250/32 -p tcp -m comment --comment FARM_app_1_ -j MARK --set-xmark 0x20d/0xffffffff" });
  });

  it("farm names holding _ and digits are attributed right", () => {
    const t = parseSave("*nat\n:NATFARM-DNAT-01 - [0:0]\n-A NATFARM-DNAT-01 -m mark --mark 0x200 -m comment --comment FARM_web_2_0_ -j DNAT --to-destination 203.0.113.10\nCOMMIT\n");
    expect(t.get("nat")!.chains.get("NATFARM-DNAT-01")!.rules[0]).toMatchObject({ farm: "web_2", backend: 0 });
  });

  it("foreignLines drops natfarm's lines and counters only", () => {
    const lines = foreignLines("# c\n*nat\n:PREROUTING ACCEPT [3:4]\n:NATFARM-X - [0:0]\n[1:2] -A PREROUTING -j NATFARM-X\n[5:6] -A PREROUTING -j ACCEPT\nCOMMIT\n");
    expect(lines).toEqual(["*nat", ":PREROUTING ACCEPT", "-A PREROUTING -j ACCEPT", "COMMIT"]);
  });
});
