import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { applyFarms, validateFarms } from "../../lib/applier/apply.ts";
import { FarmValidationError } from "../../lib/applier/errors.ts";
import type { FarmInput, ResolvedFarm } from "../../lib/farms/schema.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { FakeKernel, fakeRunner } from "../helpers/fake-kernel.ts";

/**
 * The applier's boundary check when one farm of many changes: a list that
 * differs from the last one checked only in what the checks across farms
 * cannot see (a weight) skips them; anything they can see (an address, a
 * port, a name, a mark) is checked in full, and refused as before.
 */
process.env.NATFARM_LOCK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-validate-locks-"));

const farm = (i: number, over: Partial<FarmInput> = {}): FarmInput => ({
  name: `v${i}`,
  vip: `198.51.100.${1 + (i % 5)}`,
  ports: String(1000 + i),
  protocol: "tcp",
  mode: "dnat",
  backends: [0, 1].map((k) => ({ ip: `203.0.113.${10 + k}`, port: 80, weight: 1, mark: 0x200 + i * 2 + k })),
  ...over,
});
const base = () => validateFarms(Array.from({ length: 40 }, (_, i) => farm(i)));
const refused = (input: unknown, want: RegExp) => {
  let error: unknown;
  try {
    validateFarms(input);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FarmValidationError);
  expect((error as Error).message).toMatch(want);
};

describe("a one-farm change's boundary check", () => {
  it("a weight changed in one farm of the checked list passes with the new weight", () => {
    const farms = base();
    const next = farms.map((f, i) => (i === 7 ? { ...f, backends: f.backends.map((b) => ({ ...b, weight: 9 })) } : f));
    expect(validateFarms(next)[7]!.backends.map((b) => b.weight)).toEqual([9, 9]);
    // And once more from that list (the changed farm is now the one checked).
    expect(validateFarms(next.map((f, i) => (i === 7 ? { ...f, mode: "nat" as const } : f)))[7]!.mode).toBe("nat");
  });

  it("whatever the checks across farms see is checked again, after any number of passing lists", () => {
    const farms = base();
    const at = (i: number, f: object) => farms.map((x, j) => (j === i ? { ...x, ...f } : x));
    // v5 moved onto v0's VIP and port.
    refused(at(5, { vip: farms[0]!.vip, ports: farms[0]!.ports }), /overlaps farm "v0"/);
    // v6 renamed to v1: the same count of farms, one name twice.
    refused(at(6, { name: "v1" }), /farm name "v1" is already used/);
    // v8's backend given v3's mark.
    refused(at(8, { backends: farms[8]!.backends.map((b, k) => (k === 0 ? { ...b, mark: farms[3]!.backends[0]!.mark } : b)) }), /is already used by farm "v3"/);
    // v9's backend put on a VIP.
    refused(at(9, { backends: farms[9]!.backends.map((b, k) => (k === 0 ? { ...b, ip: farms[2]!.vip } : b)) }), /cannot be a VIP|cannot also be a backend/);
    // A bad value in the changed farm is the schema's, whatever the rest.
    refused(at(4, { backends: farms[4]!.backends.map((b) => ({ ...b, weight: 0 })) }), /weight/);
    // Still the same checked list underneath: a weight change passes.
    expect(validateFarms(at(3, { backends: farms[3]!.backends.map((b) => ({ ...b, weight: 2 })) }))).toHaveLength(40);
  });

  it("farms given their marks by an apply are found again without parsing; one changed afterwards is parsed and refused", async () => {
    const fake = fakeRunner(new FakeKernel());
    const target: Target = { kind: "netns", name: "fake-validate" };
    const unmarked = Array.from({ length: 30 }, (_, i) => ({ ...farm(i), backends: farm(i).backends!.map(({ mark: _m, ...b }) => b) }));
    const r = await applyFarms(unmarked, { target, runner: fake.run });
    const resolved: ResolvedFarm[] = r.farms;
    expect(resolved.every((f) => f.backends.every((b) => typeof b.mark === "number"))).toBe(true);
    // Passed back as copies (what a caller's JSON gives): the same farms.
    expect(validateFarms(structuredClone(resolved))).toEqual(resolved);
    // A copy with a bad value is parsed, and refused.
    const bad = structuredClone(resolved);
    bad[2]!.backends[0]!.weight = 0;
    refused(bad, /weight/);
    // The returned objects edited in place never carry a bad value into the applier.
    resolved[3]!.backends[0]!.weight = 0;
    let out: ResolvedFarm[] | null = null;
    try {
      out = validateFarms(resolved) as ResolvedFarm[];
    } catch (e) {
      expect(e).toBeInstanceOf(FarmValidationError);
    }
    expect(out?.[3]!.backends[0]!.weight ?? 1).not.toBe(0);
  });
});
