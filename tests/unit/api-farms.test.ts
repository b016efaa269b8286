import { describe, expect, it } from "vitest";
import { carryMarks, etagOf, farmView, matches, mergePatch, parseFarm, permissionFor } from "../../lib/api/farms.ts";
import { FarmSchema, type Farm } from "../../lib/farms/schema.ts";
import type { FarmRow } from "../../lib/service/farm-rows.ts";

/** The REST API's pure parts: versions, If-Match, merge patches, marks carried over, and which role a change needs. */
const at = new Date(0);
const row: FarmRow = {
  id: 1,
  name: "web",
  vip: "198.51.100.10",
  ports: "80",
  protocol: "tcp",
  mode: "nat",
  status: "up",
  scheduler: "weight",
  persistence: "none",
  persistenceTtl: 120,
  healthcheck: JSON.stringify({ type: "tcp", interval: 5, timeout: 2 }),
  applyState: "applied",
  applyError: null,
  appliedAt: at,
  createdAt: at,
  updatedAt: at,
  backends: [
    { id: 1, position: 0, ip: "203.0.113.10", port: 80, weight: 50, mark: 0x200, state: "up", priority: 1, createdAt: at },
    { id: 2, position: 1, ip: "203.0.113.11", port: 80, weight: 50, mark: 0x201, state: "up", priority: 1, createdAt: at },
  ],
};
const view = () => JSON.parse(JSON.stringify(farmView(row))) as Record<string, any>;
const parse = (json: unknown): Farm => {
  const p = parseFarm(json);
  if ("refusal" in p) throw new Error(JSON.stringify(p.refusal.body));
  return p.farm;
};

describe("lib/api/farms", () => {
  it("the version changes with any stored field and If-Match compares it", () => {
    const tag = etagOf(row);
    expect(tag).toMatch(/^"[\w-]{22}"$/);
    expect(etagOf({ ...row, backends: [row.backends[0]!, { ...row.backends[1]!, weight: 51 }] })).not.toBe(tag);
    expect(etagOf({ ...row, updatedAt: new Date() })).toBe(tag);
    expect(matches(null, tag)).toBe(true);
    expect(matches("*", tag)).toBe(true);
    expect(matches(`"x", ${tag}`, tag)).toBe(true);
    expect(matches(`W/${tag}`, tag)).toBe(true);
    expect(matches(`"stale"`, tag)).toBe(false);
  });

  it("GET's farm parses with FarmSchema as is (the file format round-trips)", () => {
    expect(FarmSchema.safeParse(view()).success).toBe(true);
    expect(view().backends[0].mark).toBe("0x200");
  });

  it("operator: status and backends' weight/state only; anything else admin", () => {
    const v = view();
    expect(permissionFor(row, parse(v))).toBe("operate");
    expect(permissionFor(row, parse({ ...v, status: "stopped" }))).toBe("operate");
    // Switching NAT/DNAT is the operator's, as on the farm page.
    expect(permissionFor(row, parse({ ...v, mode: "dnat" }))).toBe("operate");
    const weights = { ...v, backends: v.backends.map((b: any, i: number) => ({ ...b, weight: i ? 10 : 90, state: i ? "maintenance" : "up" })) };
    expect(permissionFor(row, parse(weights))).toBe("operate");
    // Without marks: the same backends by position.
    expect(permissionFor(row, parse({ ...v, backends: v.backends.map(({ mark: _m, ...b }: any) => ({ ...b, weight: 7 })) }))).toBe("operate");
    for (const change of [
      { vip: "198.51.100.11" },
      { ports: "81" },
      { scheduler: "roundrobin" },
      { persistence: "srcip" },
      { healthcheck: { type: "tcp", interval: 10, timeout: 2 } },
      { backends: [v.backends[0]] },
      { backends: [...v.backends, { ip: "203.0.113.12", port: 80 }] },
      { backends: [v.backends[1], v.backends[0]] },
      { backends: [{ ...v.backends[0], ip: "203.0.113.99" }, v.backends[1]] },
      { backends: [{ ...v.backends[0], port: 8080 }, v.backends[1]] },
      { backends: [{ ...v.backends[0], priority: 2 }, v.backends[1]] },
      { backends: [{ ...v.backends[0], mark: "0x300" }, v.backends[1]] },
    ]) {
      expect(permissionFor(row, parse({ ...v, ...change })), JSON.stringify(change)).toBe("administer");
    }
    const { healthcheck: _h, ...noCheck } = v;
    expect(permissionFor(row, parse(noCheck))).toBe("administer");
  });

  it("a merge patch replaces top-level fields, null removes; marks carry over by address and port", () => {
    const m = mergePatch(view(), { healthcheck: null, backends: [{ ip: "203.0.113.11", port: 80, weight: 3 }] });
    if ("refusal" in m) throw new Error("refused");
    expect(m.next.healthcheck).toBeUndefined();
    const farm = carryMarks(parse(m.next), row);
    expect(farm.backends).toMatchObject([{ ip: "203.0.113.11", weight: 3, mark: 0x201 }]);
    expect("refusal" in mergePatch(view(), [1])).toBe(true);
    expect("refusal" in mergePatch(view(), "x")).toBe(true);
  });

  it("field paths and the CLI's words in 400s; unknown fields by their own path", () => {
    const p = parseFarm({ ...view(), extra: 1, backends: [{ ip: "203.0.113.10", weight: 0, bogus: true }] });
    expect("refusal" in p && p.refusal.status).toBe(400);
    const issues = "refusal" in p ? (p.refusal.body.issues as { path: string; message: string }[]) : [];
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: "extra", message: 'unknown field "extra"' },
        { path: "backends.0.bogus", message: 'unknown field "bogus"' },
      ]),
    );
  });
});
