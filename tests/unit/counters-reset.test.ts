import { describe, expect, it } from "vitest";
import { resetPayload } from "../../lib/applier/counters-reset.ts";
import { liveFromFarms } from "../../lib/nftables/apply.ts";
import { nftResetPayload } from "../../lib/nftables/counters-reset.ts";
import { renderNft } from "../../lib/nftables/render.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { labFarm } from "../helpers/farms.ts";
import { FarmSchema } from "../../lib/farms/schema.ts";

/**
 * What a reset writes, from a kernel read: natfarm's chains only, never a
 * built-in chain (whose -Z would zero other software's rules), one farm's
 * rules by number in the shared chains, and on nftables only the backends
 * set's elements in scope, with their comments, and the stamp put back.
 */
const SAVE = `*mangle
:PREROUTING ACCEPT [90:5400]
:FOREIGN - [0:0]
:NATFARM-PREROUTING - [0:0]
:NATFARM-VIP - [0:0]
:NATFARM-F-web - [0:0]
[9:540] -A PREROUTING -m comment --comment "natfarm: entry" -j NATFARM-PREROUTING
[9:540] -A PREROUTING -j FOREIGN
[9:540] -A FOREIGN -p tcp
[9:540] -A NATFARM-PREROUTING -j NATFARM-VIP
[5:300] -A NATFARM-VIP -d 198.51.100.10/32 -p tcp -m multiport --dports 80 -j NATFARM-F-web
[5:300] -A NATFARM-F-web -m statistic --mode random --probability 1.00000000000 -m comment --comment "FARM_web_0_" -j MARK --set-xmark 0x200/0xffffffff
COMMIT
*nat
:PREROUTING ACCEPT [9:540]
:NATFARM-PREROUTING - [0:0]
:NATFARM-DST - [0:0]
:NATFARM-DST-0200 - [0:0]
[9:540] -A PREROUTING -m comment --comment "natfarm: entry" -j NATFARM-PREROUTING
[9:540] -A NATFARM-PREROUTING -j NATFARM-DST
[9:540] -A NATFARM-DST -j NATFARM-DST-0200
[4:240] -A NATFARM-DST-0200 -m mark --mark 0x201 -m comment --comment "FARM_api_0_" -j DNAT --to-destination 203.0.113.11:80
[5:300] -A NATFARM-DST-0200 -m mark --mark 0x200 -m comment --comment "FARM_web_0_" -j DNAT --to-destination 203.0.113.10:80
COMMIT
`;

describe("iptables: the -Z payload", () => {
  it("all of natfarm's: every NATFARM chain whole, no built-in or foreign chain", () => {
    const p = resetPayload([SAVE], null);
    const lines = p.payload.split("\n");
    expect(lines.filter((l) => l.startsWith("-Z")).sort()).toEqual(
      ["-Z NATFARM-DST", "-Z NATFARM-DST-0200", "-Z NATFARM-F-web", "-Z NATFARM-PREROUTING", "-Z NATFARM-PREROUTING", "-Z NATFARM-VIP"].sort(),
    );
    expect(p.payload).not.toMatch(/-Z (PREROUTING|POSTROUTING|FOREIGN)\b/);
    expect(lines.filter((l) => l.startsWith("*"))).toEqual(["*mangle", "*nat"]);
    expect(p).toMatchObject({ chains: 6, counters: 7, packets: 9 + 5 + 5 + 9 + 9 + 4 + 5 });
  });

  it("one farm's: its own chain whole and its rules by number in the shared chains, no other farm's", () => {
    const p = resetPayload([SAVE], "web");
    expect(p.payload).toBe("*mangle\n-Z NATFARM-F-web\nCOMMIT\n*nat\n-Z NATFARM-DST-0200 2\nCOMMIT\n");
    expect(p).toMatchObject({ chains: 1, counters: 2, packets: 10 });
    expect(resetPayload([SAVE], "ghost").payload).toBe("");
  });

  it("the injected fault goes into the first section, so the refusal commits nothing", () => {
    expect(resetPayload([SAVE], "web", true).payload.split("COMMIT")[0]).toContain("-Z NATFARM-INJECTED-FAULT");
  });
});

describe("nftables: the backends set's elements again", () => {
  const farms = resolveMarks([FarmSchema.parse(labFarm("web", "198.51.100.10", 80, [1, 1])), FarmSchema.parse(labFarm("api", "198.51.100.11", 80, [1]))]);
  const live = liveFromFarms(renderNft(farms).farms, 0x1234);
  for (const e of live.sets.get("backends")!.elements) e.counter = { packets: 7, bytes: 420 };

  it("one farm's elements, deleted and added with their comments; the stamp put back as it was; nothing else", () => {
    const p = nftResetPayload(live, "web");
    const lines = p.payload.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^delete element ip natfarm backends \{ \S+, \S+ \}$/);
    expect(lines[1]).toMatch(/^add element ip natfarm backends \{ \S+ comment "FARM_web_0_", \S+ comment "FARM_web_1_" \}$/);
    expect(lines.slice(2)).toEqual(["delete element ip natfarm stamp { 0x1234 }", "add element ip natfarm stamp { 0x1234 }"]);
    expect(p).toMatchObject({ counters: 2, packets: 14, bytes: 840 });
    expect(p.payload).not.toMatch(/persist|chain|flush/);
  });

  it("all of them, or nothing when there is no table", () => {
    expect(nftResetPayload(live, null).counters).toBe(3);
    expect(nftResetPayload({ ...live, sets: new Map() }, null).payload).toBe("");
  });
});
