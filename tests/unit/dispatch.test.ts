import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { applyFarms } from "../../lib/applier/index.ts";
import { FarmListSchema, farmPortItems, type FarmInput } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { farmChain } from "../../lib/netfilter/layout.ts";
import { renderFullPayload, renderRuleset } from "../../lib/netfilter/render.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { DISPATCH_FARMS } from "../helpers/dispatch-farms.ts";
import { FakeKernel, fakeRunner, type FakeRunner } from "../helpers/fake-kernel.ts";
import { chainsOf, matches, type Chains } from "../helpers/rule-walk.ts";

/**
 * The dispatch tree: a packet walked through the rendered mangle rules (the
 * matches the tree uses, evaluated as netfilter does) enters exactly its
 * farm's chain, in a bounded number of rule evaluations; and scoped changes
 * built from the chains on their paths leave the kernel exactly where a full
 * apply of the same farms would.
 */
process.env.NATFARM_LOCK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-dispatch-locks-"));

/** Walks a new packet from the mangle entry chain: the farm chains it enters and the rules it evaluated. */
function walk(chains: Chains, p: { dst: string; proto: string; dport: number }): { farms: string[]; evaluations: number } {
  const farms: string[] = [];
  let evaluations = 0;
  const visit = (chain: string) => {
    if (chain.startsWith("NATFARM-F-")) {
      farms.push(chain);
      evaluations += chains.get(chain)!.length;
      return;
    }
    for (const spec of chains.get(chain) ?? []) {
      evaluations++;
      const j = / -j (NATFARM-\S+)$/.exec(spec);
      if (j && matches(spec, p)) visit(j[1]!);
    }
  };
  visit("NATFARM-PREROUTING");
  return { farms, evaluations };
}

/** The farm a packet belongs to by the farms' own definitions. */
function owner(farms: FarmInput[], p: { dst: string; proto: string; dport: number }): string[] {
  return farms
    .filter((f) => (f.status ?? "up") === "up" && f.vip === p.dst && (f.protocol === "all" || f.protocol === p.proto))
    .filter((f) => f.protocol === "all" || farmPortItems({ ports: String(f.ports) }).length === 0 || farmPortItems({ ports: String(f.ports) }).some((i) => p.dport >= i.from && p.dport <= i.to))
    .map((f) => farmChain(f.name));
}

const render = (farms: FarmInput[]) => renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse(farms))));

describe("dispatch by destination", () => {
  const payload = render(DISPATCH_FARMS);
  const chains = chainsOf(payload, "mangle");
  const probes: { dst: string; proto: string; dport: number }[] = [];
  for (const dst of ["198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15", "198.51.100.26", "198.51.100.27", "198.51.100.59", "192.0.2.102", "192.0.2.110", "203.0.113.10"]) {
    for (const proto of ["tcp", "udp", "sctp", "icmp"]) {
      for (const dport of [1, 53, 80, 443, 999, 1000, 1001, 1002, 1005, 1007, 2000, 2005, 2006, 2016, 2017, 3868, 5000, 5050, 5100, 5101, 8000, 8080, 8100, 8101, 65535]) probes.push({ dst, proto, dport });
    }
  }

  it("every new packet enters exactly its own farm's chain, or none", () => {
    for (const p of probes) expect(walk(chains, p).farms, JSON.stringify(p)).toEqual(owner(DISPATCH_FARMS, p));
  });

  it("a new connection costs a bounded number of rule evaluations, far below the rules of all farms", () => {
    const total = [...chains.values()].reduce((n, r) => n + r.length, 0);
    const worst = Math.max(...probes.map((p) => walk(chains, p).evaluations));
    expect(worst).toBeLessThanOrEqual(40);
    expect(worst).toBeLessThan(total / 3);
  });

  it("at 5,000 farms on 250 VIPs the first and the last farm are as close as any", () => {
    const many: FarmInput[] = Array.from({ length: 5000 }, (_, i) => ({ name: `f${i}`, vip: `198.51.100.${1 + (i % 250)}`, ports: String(1000 + Math.floor(i / 250)), protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80, mark: 0x200 + i }] }));
    const big = chainsOf(render(many), "mangle");
    for (const i of [0, 1, 2499, 4999]) {
      const p = { dst: many[i]!.vip, proto: "tcp", dport: Number(many[i]!.ports) };
      const r = walk(big, p);
      expect(r.farms).toEqual([farmChain(`f${i}`)]);
      expect(r.evaluations, `farm f${i}`).toBeLessThanOrEqual(70);
    }
  });
});

describe("scoped changes on the tree end where a full apply would", () => {
  const target: Target = { kind: "netns", name: "fake-dispatch" };
  let kernel: FakeKernel;
  let fake: FakeRunner;
  beforeEach(() => {
    kernel = new FakeKernel();
    fake = fakeRunner(kernel);
  });
  // Beside the 40 tree farms, 100 more elsewhere: a set this large is read chain by chain (a small one is read whole).
  const padding = Array.from({ length: 100 }, (_, i): FarmInput => ({ name: `pad${i}`, vip: `192.0.2.${120 + (i % 40)}`, ports: String(7000 + Math.floor(i / 40)), protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.50", port: 80 }] }));
  const base = resolveMarks(FarmListSchema.parse([...DISPATCH_FARMS, ...padding])) as unknown as FarmInput[];
  const edit = (name: string, change: Partial<FarmInput> | null): FarmInput[] =>
    change === null ? base.filter((f) => f.name !== name) : base.some((f) => f.name === name) ? base.map((f) => (f.name === name ? { ...f, ...change } : f)) : [...base, { ...change, name } as FarmInput];

  it.each<[string, string, Partial<FarmInput> | null]>([
    ["a port moves inside its node", "p2003", { ports: "2006" }],
    ["a port moves to another node", "p2017", { ports: "3000" }],
    ["a farm leaves a node of two (the node goes)", "p2016", null],
    ["a farm moves to a new VIP in another /24", "web80", { vip: "192.0.2.200" }],
    ["a farm joins a VIP alone so far (a node appears)", "dns13", { vip: "198.51.100.13", ports: "53", protocol: "udp", mode: "nat", backends: [{ ip: "203.0.113.20", port: 53, weight: 1, mark: "0x3f0" }] }],
    ["a stopped farm starts", "off", { status: "up" }],
    ["a farm stops", "media", { status: "stopped" }],
    ["a drained backend is removed (its translation found by the idle rule)", "drained", { backends: [{ ip: "203.0.113.10", port: 80, weight: 1, mark: "0x219" }] }],
    ["every backend goes down", "alt", { backends: [{ ip: "203.0.113.10", port: 8080, weight: 1, state: "down", mark: "0x205" }, { ip: "203.0.113.11", port: 8080, weight: 2, state: "down", mark: "0x206" }] }],
    ["nat → dnat", "doc3", { mode: "dnat" }],
    ["a farm is deleted", "all", null],
  ])("%s", async (_, name, change) => {
    await applyFarms(base, { target, runner: fake.run });
    const next = edit(name, change);
    const before = fake.calls.length;
    const r = await applyFarms(next, { target, runner: fake.run, only: [name] });
    expect(r.mode).toBe("scoped");
    expect(r.changed).toBe(true);
    expect(r.farmsChanged).toEqual([name]);
    const reads = fake.calls.slice(before).filter((c) => c.program === "iptables" || c.program === "iptables-save");
    expect(reads.every((c) => c.program === "iptables"), "a scoped change never reads whole tables").toBe(true);
    // The kernel now holds exactly the full render of the new set: a full apply has nothing to write.
    const full = await applyFarms(next, { target, runner: fake.run });
    expect(full.payload).toBe("");
  });

  it("a scoped change writes only chains on the changed farm's paths", async () => {
    await applyFarms(base, { target, runner: fake.run });
    const r = await applyFarms(edit("p2003", { ports: "2006" }), { target, runner: fake.run, only: ["p2003"] });
    const written = new Set([...r.payload.matchAll(/^(?::|-A |-I |-D |-F |-X )(\S+)/gm)].map((m) => m[1]!));
    // The farm's chain, its node, and the node above whose jump covers the node's ports (2000:2005 → 2000:2006).
    expect([...written].sort()).toEqual(["NATFARM-F-p2003", "NATFARM-VIP-c633640a-t07", "NATFARM-VIP-c633640a-t07d"].sort());
  });
});
