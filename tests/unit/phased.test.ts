import { describe, expect, it } from "vitest";
import { desiredPlanInput } from "../../lib/applier/apply.ts";
import { viewFromSave } from "../../lib/applier/read.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { planChanges, planPhased, SECTION_LIMITS, type SectionLimits } from "../../lib/netfilter/plan.ts";
import { renderRuleset } from "../../lib/netfilter/render.ts";
import { forwardingProblems, type MarkDefinition } from "../helpers/consistency.ts";
import { DISPATCH_FARMS } from "../helpers/dispatch-farms.ts";
import { FakeKernel } from "../helpers/fake-kernel.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { scopedPlanInput } from "../../lib/applier/scoped.ts";

/**
 * Make-before-break through a fake kernel: for each change, every prefix of
 * the payload's sections (what a killed or refused apply leaves in force)
 * forwards consistently, and the whole payload ends in exactly the new state.
 */
const farm = (name: string, vip: string, mode: "nat" | "dnat", backends: [string, number, number][]): FarmInput => ({
  name,
  vip,
  ports: "80",
  protocol: "tcp",
  mode,
  backends: backends.map(([ip, weight, mark]) => ({ ip, port: 80, weight, mark: `0x${mark.toString(16)}` })),
});

const A: FarmInput[] = [
  farm("web", "198.51.100.10", "dnat", [["203.0.113.10", 1, 0x201], ["203.0.113.11", 2, 0x202]]),
  farm("api", "198.51.100.11", "nat", [["203.0.113.12", 1, 0x203]]),
  farm("old", "198.51.100.12", "dnat", [["203.0.113.13", 1, 0x204]]),
];
const B: FarmInput[] = [
  // a backend moved (same mark, new address), one added, weights changed
  farm("web", "198.51.100.10", "dnat", [["203.0.113.20", 3, 0x201], ["203.0.113.11", 1, 0x202], ["203.0.113.14", 1, 0x205]]),
  // nat → dnat
  farm("api", "198.51.100.11", "dnat", [["203.0.113.12", 1, 0x203]]),
  // "old" removed, "new" added in nat mode
  farm("new", "198.51.100.13", "nat", [["203.0.113.15", 1, 0x206]]),
];

function definitions(...sets: FarmInput[][]): Map<number, MarkDefinition[]> {
  const out = new Map<number, MarkDefinition[]>();
  for (const set of sets) {
    for (const f of set) {
      for (const b of f.backends ?? []) {
        const dest = b.port === null || b.port === undefined || f.protocol === "all" ? b.ip : `${b.ip}:${b.port}`;
        out.set(Number(b.mark), [...(out.get(Number(b.mark)) ?? []), { dest, snat: f.mode === "nat" }]);
      }
    }
  }
  return out;
}

const view = (k: FakeKernel) => viewFromSave([k.save("mangle"), k.save("nat")]);
const plan = (k: FakeKernel, farms: FarmInput[], limits?: SectionLimits) => planPhased({ ...desiredPlanInput(renderRuleset(FarmListSchema.parse(farms) as never), view(k)), limits });
/** A section per chain: every boundary a large change can have is a boundary here. */
const EVERY_CHAIN: SectionLimits = { chains: 1, rules: 1 };
const sections = (payload: string) => payload.split("\n").filter((l) => l.startsWith("*")).length;

/** Commits every prefix of the payload's sections to a copy of `kernel` and expects each to forward consistently; returns the section count. */
function expectEveryPrefixForwards(kernel: FakeKernel, payload: string, defs: Map<number, MarkDefinition[]>, label = ""): number {
  const n = sections(payload);
  for (let k = 0; k <= n; k++) {
    const partial = kernel.clone();
    // The fake refuses a jump to a chain not yet there and removing a chain still referenced.
    partial.restore(payload, k);
    expect(forwardingProblems(partial.save("mangle"), partial.save("nat"), defs), `${label}after ${k} of ${n} sections`).toEqual([]);
  }
  return n;
}

describe("planPhased through a fake kernel", () => {
  it.each([
    ["nothing → A", [] as FarmInput[], A],
    ["A → B", A, B],
    ["B → A", B, A],
    ["A → nothing", A, []],
  ])("%s: every prefix of sections forwards consistently; the whole ends exactly in the new state", (_, from, to) => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, from).payload);
    const p = plan(kernel, to);
    expect(expectEveryPrefixForwards(kernel, p.payload, definitions(from, to))).toBeGreaterThan(0);
    kernel.restore(p.payload);
    expect(plan(kernel, to).empty).toBe(true);
  });

  it("A → B goes nat (grow), mangle, nat (shrink), and the grown nat holds old and new translations side by side", () => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, A).payload);
    const p = plan(kernel, B);
    expect(p.tables).toEqual(["nat", "mangle", "nat"]);
    const grown = kernel.clone();
    grown.restore(p.payload, 1);
    const nat = grown.save("nat");
    expect(nat).toContain("--to-destination 203.0.113.10:80"); // the moved backend's old address, still there
    expect(nat).toContain("--to-destination 203.0.113.20:80"); // and its new one, first
    expect(nat.indexOf("203.0.113.20:80")).toBeLessThan(nat.indexOf("203.0.113.10:80"));
    expect(nat).toContain("FARM_old_0_"); // the removed farm's translation stays until mangle stops marking for it
  });

  it("the net stats are those of the direct plan, whatever the sections", () => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, A).payload);
    const input = desiredPlanInput(renderRuleset(FarmListSchema.parse(B) as never), view(kernel));
    expect(planPhased(input).stats).toEqual(planChanges(input).stats);
  });

  it("a change that only adds translations and marks needs no shrink; one that only re-weights touches mangle alone", () => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, A).payload);
    const added = [...A, farm("extra", "198.51.100.20", "nat", [["203.0.113.30", 1, 0x210]])];
    expect(plan(kernel, added).tables).toEqual(["nat", "mangle"]);
    const reweighted = A.map((f) => (f.name === "web" ? { ...f, backends: f.backends!.map((b) => ({ ...b, weight: 5 })) } : f));
    expect(plan(kernel, reweighted).tables).toEqual(["mangle"]);
  });

  // The dispatch tree: farms moving between nodes, nodes splitting and merging, marks moving between blocks.
  const D = resolveMarks(FarmListSchema.parse(DISPATCH_FARMS)) as unknown as FarmInput[];
  const D2: FarmInput[] = [
    ...D.filter((f) => !["p2016", "media", "all"].includes(f.name)).map((f) =>
      f.name === "p2017" ? { ...f, ports: "3000" } : f.name === "web80" ? { ...f, vip: "192.0.2.200" } : f.name === "doc1" ? { ...f, mode: "dnat" as const } : f,
    ),
    { name: "moved", vip: "198.51.100.12", ports: "22", protocol: "tcp", mode: "nat", backends: [{ ip: "203.0.113.40", port: 22, weight: 1, mark: "0x1234" }] },
  ];

  it.each([
    ["the 40-farm tree → its changed twin", D, D2],
    ["and back", D2, D],
  ])("%s: every prefix forwards consistently, the whole ends exactly in the new state", (_, from, to) => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, from).payload);
    const p = plan(kernel, to);
    expectEveryPrefixForwards(kernel, p.payload, definitions(from, to));
    kernel.restore(p.payload);
    expect(plan(kernel, to).empty).toBe(true);
  });

  it.each([
    ["as planned", undefined],
    ["cut at every chain", EVERY_CHAIN],
  ])("scoped changes on the tree, %s: every prefix of their sections forwards consistently too", async (_, limits) => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, D).payload);
    let current = D;
    for (const name of ["p2017", "web80", "doc1", "p2016", "all", "moved"]) {
      const next = name === "p2016" || name === "all" ? current.filter((f) => f.name !== name) : [...current.filter((f) => f.name !== name), ...D2.filter((f) => f.name === name)];
      const p = planPhased({ ...(await scopedPlanInput(view(kernel), FarmListSchema.parse(next) as never, new Set([name]))), limits });
      expect(expectEveryPrefixForwards(kernel, p.payload, definitions(current, next), `${name}: `), name).toBeGreaterThan(0);
      kernel.restore(p.payload);
      current = next;
      expect(plan(kernel, current).empty, `${name}: the scoped change ends where a full apply would`).toBe(true);
    }
  });

  // Large changes are cut into many sections per table: with a section per chain, every cut a big change can have is tried.
  it.each([
    ["nothing → A", [] as FarmInput[], A],
    ["A → B", A, B],
    ["B → A", B, A],
    ["A → nothing", A, []],
    ["nothing → the 40-farm tree", [] as FarmInput[], D],
    ["the 40-farm tree → its changed twin", D, D2],
    ["and back", D2, D],
    ["the 40-farm tree → nothing", D, [] as FarmInput[]],
  ])("cut at every chain, %s: every prefix forwards consistently, each section is valid on its own", (_, from, to) => {
    const kernel = new FakeKernel();
    kernel.restore(plan(kernel, from).payload);
    const p = plan(kernel, to, EVERY_CHAIN);
    const n = expectEveryPrefixForwards(kernel, p.payload, definitions(from, to));
    expect(p.sections).toBe(n);
    expect(n).toBeGreaterThan(p.tables.length);
    kernel.restore(p.payload);
    expect(plan(kernel, to).empty).toBe(true);
  });

  it("a whole apply of 2,000 farms is cut into sections within the limits, children declared before their parents", () => {
    const many: FarmInput[] = Array.from({ length: 2000 }, (_, i) => ({
      name: `f${i}`,
      vip: `198.51.100.${1 + (i % 250)}`,
      ports: String(1000 + Math.floor(i / 250)),
      protocol: "tcp",
      mode: i % 2 ? "nat" : "dnat",
      backends: [1, 2, 3, 4].map((w, k) => ({ ip: `203.0.113.${10 + k}`, port: 8080, weight: w })),
    }));
    const kernel = new FakeKernel();
    const resolved = resolveMarks(FarmListSchema.parse(many)) as unknown as FarmInput[];
    const p = plan(kernel, resolved);
    const parts = p.payload.split("COMMIT\n").filter((x) => x.trim());
    expect(parts.length).toBe(p.sections);
    expect(p.sections).toBeGreaterThan(20);
    expect(p.tables).toEqual(["nat", "mangle"]);
    for (const part of parts) {
      const lines = part.split("\n");
      expect(lines.filter((l) => l.startsWith(":")).length).toBeLessThanOrEqual(SECTION_LIMITS.chains);
      // A single chain larger than the rule limit still goes whole; none is here, bar the last section's edits.
      expect(lines.filter((l) => /^(\[\d+:\d+\] )?-[AI] /.test(l)).length).toBeLessThanOrEqual(SECTION_LIMITS.rules + 3);
    }
    // The fake refuses a jump to a chain not declared yet: children come first.
    kernel.restore(p.payload);
    expect(plan(kernel, resolved).empty).toBe(true);
  });
});
