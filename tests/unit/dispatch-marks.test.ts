import { describe, expect, it } from "vitest";
import { formatIssues } from "../../lib/farms/errors.ts";
import { isBackendMark, MARK_CAPACITY, MARK_MAX, MARK_MIN, parseMark, SCRATCH_MAX, SCRATCH_MIN } from "../../lib/farms/marks.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { FarmListSchema, type FarmInput, type ResolvedFarm } from "../../lib/farms/schema.ts";
import { farmChain, markBlockChain, markGroupChain, parseMarkChain } from "../../lib/netfilter/layout.ts";
import { renderFullPayload, renderRuleset } from "../../lib/netfilter/render.ts";
import { OWN_MARKS, slotBase } from "../../lib/nftables/layout.ts";
import { renderNft } from "../../lib/nftables/render.ts";
import { chainsOf, matches, type Chains, type Packet } from "../helpers/rule-walk.ts";

/**
 * Room for 20,000 farms of 4 backends: 80,000 marks from natfarm's two pages
 * (lib/farms/marks.ts), handed out so that an installation of the old range
 * keeps every mark, and a new connection still costs a bounded number of rule
 * evaluations in mangle (its farm by destination) and in nat (its backend's
 * translation by mark), the first farm's as the last one's.
 */
/** Walks a packet from an entry chain: the terminal rules it reaches (farm chains, DNAT/SNAT rules) and the rules it evaluated. */
function walk(chains: Chains, entry: string, p: Packet, stopAt: (chain: string) => boolean): { reached: string[]; evaluations: number } {
  const reached: string[] = [];
  let evaluations = 0;
  const visit = (chain: string): boolean => {
    if (stopAt(chain)) {
      reached.push(chain);
      evaluations += chains.get(chain)!.length;
      return false;
    }
    for (const spec of chains.get(chain) ?? []) {
      evaluations++;
      if (!matches(spec, p)) continue;
      const j = / -j (\S+)/.exec(` ${spec}`);
      if (!j) continue;
      if (j[1]!.startsWith("NATFARM-")) {
        if (visit(j[1]!)) return true;
      } else if (j[1] === "DNAT" || j[1] === "SNAT") {
        // A translation ends the nat table's walk for this packet.
        reached.push(spec);
        return true;
      }
    }
    return false;
  };
  visit(entry);
  return { reached, evaluations };
}

/** The benches' farms: 4 backends (weights 1:2:3:4), half nat, half dnat, on 250 VIPs. */
const farmsOf = (n: number): FarmInput[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `f${i}`,
    vip: `198.51.100.${1 + (i % 250)}`,
    ports: String(1000 + Math.floor(i / 250)),
    protocol: "tcp",
    mode: i % 2 ? "nat" : "dnat",
    backends: [1, 2, 3, 4].map((w, k) => ({ ip: `203.0.113.${10 + k}`, port: 8080, weight: w })),
  }));

describe("natfarm's marks", () => {
  it("hold 20,000 farms of 4 backends: the first 65,024 from 0x200–0xffff as before, the rest from 0x10200 up, none a source-hash scratch mark", () => {
    expect(MARK_CAPACITY).toBe(130_048);
    const resolved = resolveMarks(FarmListSchema.parse(farmsOf(20_000)));
    const marks = resolved.flatMap((f) => f.backends.map((b) => b.mark));
    expect(new Set(marks).size).toBe(80_000);
    expect(marks.every(isBackendMark)).toBe(true);
    expect(marks.slice(0, 65_024)).toEqual(Array.from({ length: 65_024 }, (_, i) => MARK_MIN + i));
    expect(marks[65_024]).toBe(SCRATCH_MAX + 1);
    expect(Math.max(...marks)).toBe(0x10200 + 80_000 - 65_024 - 1);
  });

  it("are read and refused at the boundary: the scratch marks and anything above 0x1ffff are no backend's", () => {
    expect([parseMark("0x200"), parseMark("0xffff"), parseMark("0x10200"), parseMark("0x1ffff"), parseMark(0x1abcd)]).toEqual([0x200, 0xffff, 0x10200, 0x1ffff, 0x1abcd]);
    for (const bad of ["0x1ff", "0x10000", "0x101ff", "0x20000", "0x40000", 0x10020, MARK_MAX + 1]) expect(parseMark(bad), String(bad)).toBeNull();
    const farm = (mark: string): FarmInput => ({ name: "a", vip: "198.51.100.1", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80, mark }] });
    const r = FarmListSchema.safeParse([farm("0x10010")]);
    expect(r.success).toBe(false);
    if (!r.success) expect(formatIssues(r.error, [farm("0x10010")])).toEqual([`farm "a" › backend 1 (203.0.113.10) › mark: mark must be a number in 0x200–0xffff or 0x10200–0x1ffff (e.g. "0x20c"), got "0x10010"`]);
    expect(FarmListSchema.safeParse([farm("0x1ffff")]).success).toBe(true);
  });

  it("an installation of the old range keeps every mark: the kernel's marks are kept, and new backends take the lowest free ones", () => {
    const farms = FarmListSchema.parse(farmsOf(300));
    const known = new Map<string, number>();
    // Marks an older natfarm gave, scattered over its whole range.
    farms.forEach((f, i) => f.backends.forEach((b, k) => known.set(`${f.name}|${b.ip}|${b.port}`, 0xffff - i * 4 - k)));
    const resolved = resolveMarks(farms, known);
    resolved.forEach((f, i) => f.backends.forEach((b, k) => expect(b.mark).toBe(0xffff - i * 4 - k)));
  });

  it("name their nat chains so that the first page's keep their names and the second page's parse back", () => {
    expect([markGroupChain("DNAT", 0x20c), markBlockChain("DNAT", 0x20c), markGroupChain("DNAT", 0xffff), markBlockChain("SNAT", 0xffff)]).toEqual(["NATFARM-DST-0", "NATFARM-DST-0200", "NATFARM-DST-f", "NATFARM-SRC-ffc0"]);
    expect([markGroupChain("DNAT", 0x10200), markBlockChain("DNAT", 0x10200), markGroupChain("SNAT", 0x1ffff), markBlockChain("SNAT", 0x1ffff)]).toEqual(["NATFARM-DST-10", "NATFARM-DST-10200", "NATFARM-SRC-1f", "NATFARM-SRC-1ffc0"]);
    expect(parseMarkChain("NATFARM-DST-1f")).toEqual({ role: "DNAT", level: "group", base: 0x1f000 });
    expect(parseMarkChain("NATFARM-SRC-1ffc0")).toEqual({ role: "SNAT", level: "block", base: 0x1ffc0 });
    expect(parseMarkChain("NATFARM-DST-2f")).toBeNull();
    expect(parseMarkChain("NATFARM-DST-2ffc0")).toBeNull();
  });

  describe("at 20,000 farms of 4 backends, a new connection to the first farm and to the last", () => {
    const resolved: ResolvedFarm[] = resolveMarks(FarmListSchema.parse(farmsOf(20_000)));
    const payload = renderFullPayload(renderRuleset(resolved));
    const mangle = chainsOf(payload, "mangle");
    const nat = chainsOf(payload, "nat");
    const picks = [0, 1, 9_999, 16_255, 16_256, 19_998, 19_999];

    it("mangle: reaches exactly its farm's chain in a few dozen rule evaluations", () => {
      const counts = picks.map((i) => {
        const f = resolved[i]!;
        const r = walk(mangle, "NATFARM-PREROUTING", { dst: f.vip, proto: "tcp", dport: Number(f.ports), mark: 0 }, (c) => c.startsWith("NATFARM-F-"));
        expect(r.reached, f.name).toEqual([farmChain(f.name)]);
        return r.evaluations;
      });
      expect(Math.max(...counts)).toBeLessThanOrEqual(70);
    });

    it("nat: every backend's mark reaches its own DNAT (and SNAT in nat mode) rule, within 32 + 64 + 64 rule evaluations", () => {
      const worst: number[] = [];
      for (const i of picks) {
        const f = resolved[i]!;
        for (const [k, b] of f.backends.entries()) {
          const p = { dst: f.vip, proto: "tcp", dport: Number(f.ports), mark: b.mark };
          const dnat = walk(nat, "NATFARM-PREROUTING", p, () => false);
          expect(dnat.reached, `${f.name} ${k}`).toEqual([expect.stringMatching(new RegExp(`--comment FARM_${f.name}_${k}_ -j DNAT --to-destination ${b.ip}:8080$`))]);
          const snat = walk(nat, "NATFARM-POSTROUTING", p, () => false);
          expect(snat.reached, `${f.name} ${k}`).toEqual(f.mode === "nat" ? [expect.stringMatching(new RegExp(`--comment FARM_${f.name}_${k}_ -j SNAT --to-source ${f.vip}$`))] : []);
          worst.push(dnat.evaluations, snat.evaluations);
        }
      }
      expect(Math.max(...worst)).toBeLessThanOrEqual(32 + 64 + 64);
      expect(nat.get("NATFARM-DST")!.length).toBeLessThanOrEqual(32);
    });

    it("nat: packets with other software's marks, or a scratch mark, reach no translation", () => {
      for (const mark of [0x0, 0x7, 0x1ff, SCRATCH_MIN, SCRATCH_MIN + 3, 0x20000, 0x40000, 0x80000, 0x4000_0000]) {
        const p = { dst: "198.51.100.1", proto: "tcp", dport: 1000, mark };
        expect(walk(nat, "NATFARM-PREROUTING", p, () => false).reached, formatMarkText(mark)).toEqual([]);
      }
    });

    it("nftables: the connection-mark restore covers every mark handed out, and no farm's slot value is a backend's mark or wider than 32 bits", () => {
      expect(OWN_MARKS).toBe("0x200-0x1ffff");
      const desired = renderNft(resolved);
      expect(desired.farms.size).toBe(20_000);
      const last = resolved[19_999]!;
      const base = slotBase(last.backends.map((b) => b.mark));
      expect(base).toBeGreaterThan(MARK_MAX);
      expect(base + 100 * 64).toBeLessThan(2 ** 32);
    });
  });
});

const formatMarkText = (m: number) => `0x${m.toString(16)}`;
