import { describe, expect, it } from "vitest";
import { FarmFileSchema, FarmListSchema } from "../../lib/farms/schema.ts";
import { formatIssues } from "../../lib/farms/errors.ts";
import { parsePortSpec } from "../../lib/farms/ports.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { guideFarm } from "../helpers/farms.ts";

/** Every bad input gets a message that names the farm, the backend and the field. */
function errorsOf(input: unknown): string[] {
  const r = FarmFileSchema.safeParse(input);
  if (r.success) return [];
  return formatIssues(r.error, input);
}

const good = () => ({ farms: [guideFarm()] });
const withFarm = (patch: Record<string, unknown>) => ({ farms: [{ ...guideFarm(), ...patch }] });
const withBackend = (i: number, patch: Record<string, unknown>) => {
  const f = guideFarm();
  const backends = f.backends!.map((b, k) => (k === i ? { ...b, ...patch } : b));
  return { farms: [{ ...f, backends }] };
};

export const BAD_INPUTS: [string, unknown, RegExp][] = [
  ["invalid VIP", withFarm({ vip: "192.168.101.300" }), /farm "app" › vip: "192\.168\.101\.300" is not a valid IPv4 address/],
  ["IPv6 VIP", withFarm({ vip: "2001:db8::1" }), /farm "app" › vip: IPv6 .* not yet supported/],
  ["invalid backend IP", withBackend(1, { ip: "10.0.0" }), /farm "app" › backend 1 \(10\.0\.0\) › ip: .*not a valid IPv4/],
  ["IPv6 backend", withBackend(0, { ip: "2001:db8::10" }), /backend 0 .* › ip: IPv6/],
  ["port 0", withBackend(0, { port: 0 }), /backend 0 \(192\.168\.1\.10\) › port: port must be a whole number from 1 to 65535/],
  ["port 65536", withBackend(1, { port: 65536 }), /backend 1 \(192\.168\.1\.11\) › port: port must be/],
  ["virtual port 0", withFarm({ ports: "0" }), /farm "app" › ports: port 0 is outside 1\.\.65535/],
  ["virtual port 65536", withFarm({ ports: "80,65536" }), /farm "app" › ports: port 65536 is outside/],
  ["reversed range", withFarm({ ports: "8100:8000" }), /farm "app" › ports: range 8100:8000 is reversed/],
  ["weight 0", withBackend(0, { weight: 0 }), /backend 0 \(192\.168\.1\.10\) › weight: weight must be a whole number from 1 to 100/],
  ["weight -1", withBackend(1, { weight: -1 }), /backend 1 \(192\.168\.1\.11\) › weight: weight must be/],
  ["weight 1.5", withBackend(0, { weight: 1.5 }), /backend 0 .* › weight: weight must be a whole number/],
  ["weight 101", withBackend(0, { weight: 101 }), /weight: weight must be a whole number from 1 to 100/],
  ["shell metacharacters in name", withFarm({ name: "app;rm -rf /" }), /farm "app;rm -rf \/" › name: name may hold only letters, digits, _ and -/],
  ["backticks in name", withFarm({ name: "a`id`" }), /› name: name may hold only/],
  ["name too long", withFarm({ name: "a".repeat(21) }), /› name: name must be at most 20 characters/],
  ["duplicate backends", withBackend(1, { ip: "192.168.1.10", mark: "0x20e" }), /backend 1 \(192\.168\.1\.10\) › ip: duplicate backend 192\.168\.1\.10:443/],
  ["duplicate marks in a farm", withBackend(1, { mark: "0x20c" }), /backend 1 \(192\.168\.1\.11\) › mark: mark 0x20c is already used by backend 0/],
  ["mark outside the range", withBackend(0, { mark: "0x1" }), /backend 0 .* › mark: mark must be a number from 0x200/],
  ["unknown protocol", withFarm({ protocol: "icmp" }), /farm "app" › protocol: protocol must be one of tcp, udp, sctp, all/],
  ["unknown mode", withFarm({ mode: "snat" }), /farm "app" › mode: mode must be "nat"/],
  ["unknown field", withFarm({ vips: "1.2.3.4" }), /farm "app": Unrecognized key: "vips"/],
  ["too many multiport slots", withFarm({ ports: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:20" }), /ports: too many ports: 16 slots/],
  ["protocol all with ports", withFarm({ protocol: "all", ports: "80" }), /ports: protocol "all" balances every port/],
  [
    "duplicate VIP+port+protocol across farms",
    { farms: [guideFarm(), { ...guideFarm(), name: "app2", ports: "80,443", backends: [] }] },
    /farm "app2" › ports: 192\.168\.101\.250 tcp\/80,443 overlaps farm "app"/,
  ],
  [
    "overlapping range across farms",
    { farms: [{ ...guideFarm(), ports: "400:500" }, { ...guideFarm(), name: "b", ports: "450", backends: [] }] },
    /farm "b" › ports: .* overlaps farm "app"/,
  ],
  [
    "duplicate marks across farms",
    { farms: [guideFarm(), { ...guideFarm(), name: "other", vip: "192.168.101.251" }] },
    /farm "other" › backend 0 \(192\.168\.1\.10\) › mark: mark 0x20c is already used by farm "app"/,
  ],
  ["duplicate farm names", { farms: [guideFarm(), { ...guideFarm(), vip: "192.168.101.251", backends: [] }] }, /farm "app" › name: farm name "app" is already used/],
];

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
