import { describe, expect, it } from "vitest";
import { FarmFileSchema, FarmListSchema, type FarmInput } from "../../lib/farms/schema.ts";
import { formatIssues } from "../../lib/farms/errors.ts";
import { isBackendMark, MARK_CAPACITY, MARK_MIN } from "../../lib/farms/marks.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { farmWarnings } from "../../lib/farms/warnings.ts";
import { validateSet } from "../../lib/service/validation.ts";
import { guideFarm, MIXED_FARMS } from "../helpers/farms.ts";

/**
 * What the schema promises beyond single fields (issue 7): a VIP is never a
 * backend's address, every-port farms are flagged, and a set that cannot get
 * a mark for every backend is bad input naming the backend, not a crash later.
 */
function errorsOf(input: unknown): string[] {
  const r = FarmFileSchema.safeParse(input);
  return r.success ? [] : formatIssues(r.error, input);
}

const farm = (name: string, vip: string, backends: string[], extra: Partial<FarmInput> = {}): FarmInput => ({
  name,
  vip,
  ports: "80",
  protocol: "tcp",
  mode: "dnat",
  backends: backends.map((ip) => ({ ip, port: 80 })),
  ...extra,
});

describe("a VIP is never a backend's address", () => {
  it("within a farm: the backend is named", () => {
    const errors = errorsOf({ farms: [farm("web", "198.51.100.10", ["203.0.113.10", "198.51.100.10"])] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^farm "web" › backend 2 \(198\.51\.100\.10\) › ip: 198\.51\.100\.10 is this farm's own VIP/);
  });

  it("across farms: a backend on another farm's VIP, reported on the later farm", () => {
    const errors = errorsOf({ farms: [farm("a", "198.51.100.10", ["203.0.113.10"]), farm("b", "198.51.100.11", ["203.0.113.11", "198.51.100.10"])] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^farm "b" › backend 2 \(198\.51\.100\.10\) › ip: 198\.51\.100\.10 is the VIP of farm "a"/);
  });

  it("across farms: a VIP that is another farm's backend, reported on the VIP", () => {
    const errors = errorsOf({ farms: [farm("a", "198.51.100.10", ["203.0.113.10"]), farm("b", "203.0.113.10", ["203.0.113.11"])] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^farm "b" › vip: 203\.0\.113\.10 is backend 1 \(203\.0\.113\.10\) of farm "a"/);
  });

  it("the console reports it on the farm being changed, under its field", () => {
    const others = [farm("a", "198.51.100.10", ["203.0.113.10"])];
    const asBackend = validateSet(others, farm("b", "198.51.100.11", ["198.51.100.10"]));
    expect(asBackend.ok).toBe(false);
    if (asBackend.ok) return;
    expect(asBackend.errors["backends.0.ip"]?.[0]).toMatch(/198\.51\.100\.10 is the VIP of farm "a"/);
    const asVip = validateSet(others, farm("b", "203.0.113.10", ["203.0.113.11"]));
    if (asVip.ok) throw new Error("expected a refusal");
    expect(asVip.errors.vip?.[0]).toMatch(/is backend 1 \(203\.0\.113\.10\) of farm "a"/);
  });

  it("the same backend in several farms and several farms on one VIP stay fine", () => {
    expect(errorsOf({ farms: [farm("a", "198.51.100.10", ["203.0.113.10"]), farm("b", "198.51.100.10", ["203.0.113.10"], { ports: "443" })] })).toEqual([]);
  });
});

describe("farmWarnings", () => {
  it("flags protocol all on every port (it captures SSH when the VIP is the balancer's own address)", () => {
    const farms = FarmListSchema.parse(MIXED_FARMS);
    const warnings = farmWarnings(farms);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^farm "any": protocol all on ports \* captures every connection to 198\.51\.100\.251/);
    expect(warnings[0]).toMatch(/SSH/);
  });

  it("says nothing about ordinary farms", () => {
    expect(farmWarnings(FarmListSchema.parse([guideFarm()]))).toEqual([]);
  });
});

describe("running out of marks", () => {
  // natfarm's two pages of marks hold 130,048; a farm holds at most 64 backends.
  const capacity = MARK_CAPACITY;
  const bigSet = (backends: number, explicit: boolean): FarmInput[] => {
    const farms: FarmInput[] = [];
    for (let i = 0, left = backends, mark = MARK_MIN; left > 0; i++) {
      const n = Math.min(64, left);
      left -= n;
      farms.push({
        name: `f${i}`,
        vip: `198.51.100.${1 + (i % 250)}`,
        ports: String(1000 + Math.floor(i / 250)),
        protocol: "tcp",
        mode: "dnat",
        backends: Array.from({ length: n }, (_, k) => {
          while (explicit && mark <= 0x1ffff && !isBackendMark(mark)) mark++;
          return { ip: `203.0.113.${1 + k}`, port: 80, ...(explicit && mark <= 0x1ffff ? { mark: mark++ } : {}) };
        }),
      });
    }
    return farms;
  };

  it("one backend more than the range holds: refused, naming the farm and backend that gets no mark", () => {
    const farms = bigSet(capacity + 1, false);
    const r = FarmListSchema.safeParse(farms);
    expect(r.success).toBe(false);
    if (r.success) return;
    const errors = formatIssues(r.error, farms);
    expect(errors).toHaveLength(1);
    const last = farms[farms.length - 1]!;
    expect(errors[0]).toBe(
      `farm "${last.name}" › backend 1 (203.0.113.1) › mark: no netfilter mark left for this backend: the farms hold ${capacity + 1} backends, natfarm's marks (0x200–0xffff or 0x10200–0x1ffff) are ${capacity}`,
    );
  });

  it("explicit marks filling the range: the backend without a mark is named", () => {
    const farms = bigSet(capacity + 1, true);
    const errors = errorsOf({ farms });
    expect(errors).toEqual([expect.stringMatching(new RegExp(`^farm "${farms[farms.length - 1]!.name}" › backend 1 \\(203\\.0\\.113\\.1\\) › mark: no netfilter mark left`))]);
  });

  it("exactly the range: every backend gets a mark", () => {
    const farms = FarmListSchema.parse(bigSet(capacity, false));
    const marks = new Set(resolveMarks(farms).flatMap((f) => f.backends.map((b) => b.mark)));
    expect(marks.size).toBe(capacity);
  });
});

describe("an unknown farm's page is a 404", () => {
  it("no loading.tsx above /farms/[name]: its fallback would start the response (200) before the page's notFound()", async () => {
    const { existsSync, readFileSync } = await import("node:fs");
    const app = new URL("../../app/", import.meta.url);
    for (const dir of ["", "farms/", "farms/[name]/"]) {
      expect(existsSync(new URL(`${dir}loading.tsx`, app)), `app/${dir}loading.tsx`).toBe(false);
      expect(existsSync(new URL(`${dir}loading.js`, app)), `app/${dir}loading.js`).toBe(false);
    }
    const page = readFileSync(new URL("farms/[name]/page.tsx", app), "utf8");
    const body = page.slice(page.indexOf("export default async function FarmPage"));
    // The existence check and notFound() come before the page's own Suspense boundary.
    expect(body.indexOf("notFound()")).toBeGreaterThan(0);
    expect(body.indexOf("notFound()")).toBeLessThan(body.indexOf("<Suspense"));
  });
});
