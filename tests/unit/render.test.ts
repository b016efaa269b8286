import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { farmChain } from "../../lib/netfilter/layout.ts";
import { DISPATCH_FARMS } from "../helpers/dispatch-farms.ts";
import { renderFarmText, renderFullPayload, renderRuleset } from "../../lib/netfilter/render.ts";
import { guideFarm, MIXED_FARMS, SCHEDULER_FARMS } from "../helpers/farms.ts";

const golden = (name: string) => readFileSync(path.join(import.meta.dirname, "..", "golden", name), "utf8");
const render = (farms: unknown[]) => renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse(farms))));

describe("rendering (golden files)", () => {
  it.each(["dnat", "nat"] as const)("the guide's example in %s mode", (mode) => {
    expect(render([guideFarm(mode)])).toBe(golden(`guide-${mode}.rules`));
  });

  it("udp lists and ranges, protocol all, sctp, maintenance and stopped farms", () => {
    expect(render(MIXED_FARMS)).toBe(golden("mixed.rules"));
  });

  it("round robin, source hash, priority and persistence", () => {
    expect(render(SCHEDULER_FARMS)).toBe(golden("schedulers.rules"));
  });

  it("the dispatch tree of 40 farms: shared VIPs, port lists and ranges, every-port and protocol-all farms, another /24", () => {
    expect(render(DISPATCH_FARMS)).toBe(golden("dispatch.rules"));
  });

  it("renders the guide's MARK lines, last backend first, with the guide's probabilities", () => {
    const text = renderFarmText(resolveMarks(FarmListSchema.parse([guideFarm()]))[0]!);
    const marks = text.split("\n").filter((l) => l.includes("-j MARK"));
    expect(marks).toEqual([
      `-A NATFARM-F-app -d 192.168.101.250/32 -p tcp -m statistic --mode random --probability 1.00000000000 -m multiport --dports 443 -m comment --comment FARM_app_1_ -j MARK --set-xmark 0x20d/0xffffffff`,
      `-A NATFARM-F-app -d 192.168.101.250/32 -p tcp -m statistic --mode random --probability 0.50000000000 -m multiport --dports 443 -m comment --comment FARM_app_0_ -j MARK --set-xmark 0x20c/0xffffffff`,
    ]);
  });

  it("renders nothing at all when no farm is up", () => {
    expect(render([{ ...guideFarm(), status: "stopped" }])).toBe("");
  });

  it("keeps chain names within iptables' 28 characters, and long farm names apart", () => {
    expect(farmChain("app")).toBe("NATFARM-F-app");
    expect(farmChain("x".repeat(18))).toBe(`NATFARM-F-${"x".repeat(18)}`);
    const long = [farmChain("x".repeat(19)), farmChain("x".repeat(20)), farmChain(`${"x".repeat(11)}yyyyyyyyy`)];
    for (const name of long) expect(name.length).toBeLessThanOrEqual(28);
    expect(new Set(long).size).toBe(3);
    // Pinned: a change of the hash would rename these farms' chains.
    expect(long[1]).toBe("NATFARM-F-xxxxxxxxxxx~" + long[1]!.slice(-6));
    const payload = render(DISPATCH_FARMS);
    for (const m of payload.matchAll(/^:(\S+) /gm)) expect(m[1]!.length, m[1]).toBeLessThanOrEqual(28);
  });
});
