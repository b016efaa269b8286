import { describe, expect, it } from "vitest";
import { FarmFileSchema, FarmListSchema, FarmSchema } from "../../lib/farms/schema.ts";
import { formatIssues } from "../../lib/farms/errors.ts";
import { parsePortSpec } from "../../lib/farms/ports.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { guideFarm } from "../helpers/farms.ts";
import { BAD_INPUTS, good } from "../helpers/bad-inputs.ts";

/** Every bad input gets a message that names the farm, the backend and the field. */
function errorsOf(input: unknown): string[] {
  const r = FarmFileSchema.safeParse(input);
  if (r.success) return [];
  return formatIssues(r.error, input);
}

describe("the farm schema", () => {
  it("accepts the guide's example and canonicalizes it", () => {
    const r = FarmFileSchema.parse(good());
    expect(r.farms[0]!.backends.map((b) => b.mark)).toEqual([0x20c, 0x20d]);
    expect(r.farms[0]!.status).toBe("up");
  });

  it("accepts its own output (the applier re-validates what the CLI parsed)", () => {
    const once = FarmListSchema.parse([guideFarm(), { ...guideFarm(), name: "b", vip: "198.51.100.7", ports: " 80, 8000:8100 ", backends: [] }]);
    expect(FarmListSchema.parse(once)).toEqual(once);
    expect(once[1]!.ports).toBe("80,8000:8100");
  });

  it.each(BAD_INPUTS)("%s: refused with a message naming the field", (_, input, message) => {
    const errors = errorsOf(input);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join("\n")).toMatch(message);
  });

  it("lets the same port be used by tcp and udp on one VIP, and disjoint ports", () => {
    const farms = [guideFarm(), { ...guideFarm(), name: "u", protocol: "udp" as const, backends: [] }, { ...guideFarm(), name: "p", ports: "444:450", backends: [] }];
    expect(errorsOf({ farms })).toEqual([]);
  });
});

describe("one validation pass", () => {
  /** Every issue of one parse, as "path: message". */
  const issuesOf = (schema: { safeParse(x: unknown): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } } }, input: unknown) =>
    (schema.safeParse(input).error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);

  it("reports port 0, a bad VIP, a bad weight and a duplicate backend of one farm together", () => {
    const farm = {
      ...guideFarm(),
      vip: "1.2.3.999",
      ports: "0",
      backends: [
        { ip: "192.168.1.10", port: 443, weight: 0 },
        { ip: "192.168.1.10", port: 443 },
      ],
    };
    const issues = issuesOf(FarmSchema, farm);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^vip: /),
        expect.stringMatching(/^ports: port 0 is outside 1\.\.65535/),
        expect.stringMatching(/^backends\.0\.weight: weight must be/),
        expect.stringMatching(/^backends\.1\.ip: duplicate backend 192\.168\.1\.10:443 \(same as backend 1\)/),
      ]),
    );
  });

  it("reports empty ports with a bad backend address, and a health check that cannot probe, at once", () => {
    const issues = issuesOf(FarmSchema, { ...guideFarm(), protocol: "udp", ports: "", healthcheck: { type: "tcp", interval: 0 }, backends: [{ ip: "10.0.0" }] });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ports: ports are required/),
        expect.stringMatching(/^backends\.0\.ip: /),
        expect.stringMatching(/^healthcheck\.interval: /),
        expect.stringMatching(/^healthcheck\.type: a tcp check cannot probe a udp farm/),
      ]),
    );
  });

  it("reports an overlap with another farm together with the farm's own field errors", () => {
    const other = { ...guideFarm(), name: "other", backends: [] };
    const mine = { ...guideFarm(), backends: [{ ip: "192.168.1.10", port: 0 }, { ip: "192.168.1.11", weight: 500 }] };
    const issues = issuesOf(FarmListSchema, [other, mine]);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^1\.ports: 192\.168\.101\.250 tcp\/443 overlaps farm "other"/),
        expect.stringMatching(/^1\.backends\.0\.port: port must be/),
        expect.stringMatching(/^1\.backends\.1\.weight: weight must be/),
      ]),
    );
    // And a name taken by another farm, while this farm's VIP is broken.
    expect(issuesOf(FarmListSchema, [other, { ...other, vip: "x" }])).toEqual(expect.arrayContaining([expect.stringMatching(/^1\.name: farm name "other" is already used/), expect.stringMatching(/^1\.vip: /)]));
  });

  it("says nothing about fields it could not read (no overlap guessed from a broken port list)", () => {
    const issues = issuesOf(FarmListSchema, [{ ...guideFarm(), name: "other", backends: [] }, { ...guideFarm(), ports: "443,", backends: [] }]);
    expect(issues).toEqual(["1.ports: empty item in the port list"]);
  });
});

describe("port specs", () => {
  it("parses single ports, lists, ranges and *", () => {
    expect(parsePortSpec("443")).toEqual({ ok: true, items: [{ from: 443, to: 443 }] });
    expect(parsePortSpec("80,443")).toEqual({ ok: true, items: [{ from: 80, to: 80 }, { from: 443, to: 443 }] });
    expect(parsePortSpec("8000:8100")).toEqual({ ok: true, items: [{ from: 8000, to: 8100 }] });
    expect(parsePortSpec("*")).toEqual({ ok: true, items: [] });
  });
  it.each(["", "80,", "a", "80:80", "1:2:3", "-1", "99999", "80,79:81"])("refuses %j", (spec) => {
    expect(parsePortSpec(spec).ok).toBe(false);
  });
});

describe("mark allocation", () => {
  it("keeps explicit marks, reuses known ones, and hands out the lowest free otherwise", () => {
    const farms = FarmListSchema.parse([
      { name: "a", vip: "198.51.100.1", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", mark: "0x200" }, { ip: "203.0.113.11" }] },
      { name: "b", vip: "198.51.100.2", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10" }, { ip: "203.0.113.12" }] },
    ]);
    const known = new Map([["b|203.0.113.12|*", 0x250]]);
    const r = resolveMarks(farms, known);
    expect(r[0]!.backends.map((b) => b.mark)).toEqual([0x200, 0x201]);
    expect(r[1]!.backends.map((b) => b.mark)).toEqual([0x202, 0x250]);
  });
});

describe("the file format round trip", () => {
  it("toFileFarm writes back every field the schema reads, marks in hex", async () => {
    const { toFileFarm, parseFarmFile } = await import("../../lib/farms/file.ts");
    const { SCHEDULER_FARMS, MIXED_FARMS } = await import("../helpers/farms.ts");
    const farms = FarmListSchema.parse([
      ...MIXED_FARMS,
      ...SCHEDULER_FARMS.map((f, i) => ({ ...f, healthcheck: i === 0 ? { type: "http" as const, path: "/health", expectStatus: 204 } : undefined })),
    ]);
    const text = JSON.stringify({ farms: farms.map((f) => toFileFarm(f)) });
    expect(text).toContain('"mark":"0x300"');
    expect(parseFarmFile(text).farms).toEqual(farms);
  });
});
