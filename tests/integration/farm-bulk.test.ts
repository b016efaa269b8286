import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { directKernel } from "../../lib/kernel/index.ts";
import { countingKernel } from "../helpers/counting-kernel.ts";
import { parseBackendAddress } from "../../lib/service/farm-bulk.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { createNetns, deleteNetns, iptablesSave } from "../helpers/netns.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The farms list's bulk operation against a real database and real
 * netfilter in a namespace this file creates and deletes: every affected
 * farm in ONE kernel apply, and a refused bulk change leaves the database
 * and the kernel exactly as they were.
 */
let testDb: TestDatabase | undefined;
let ns: { name: string; target: Target };
let db: PrismaClient;
let service: FarmService;
const applies: (readonly string[] | undefined)[] = [];

const farm = (i: number, backends: string[]) => ({
  name: `b${i}`,
  vip: "198.51.100.20",
  ports: String(8000 + i),
  protocol: "tcp" as const,
  mode: "dnat" as const,
  backends: backends.map((ip) => ({ ip, port: 80, weight: 1 })),
});

async function kernelText(): Promise<string> {
  return ((await iptablesSave(ns.target, "mangle")) + (await iptablesSave(ns.target, "nat")))
    .split("\n")
    .filter((l) => !l.startsWith("#") && !/^:.* \[\d+:\d+\]$/.test(l))
    .join("\n");
}

async function snapshot() {
  const rows = await service.listFarms();
  return { kernel: await kernelText(), rows: rows.map((r) => ({ name: r.name, status: r.status, applyState: r.applyState, backends: r.backends.map((b) => `${b.ip}:${b.port}=${b.state}`) })) };
}

beforeAll(async () => {
  testDb = await createTestDatabase("bulk");
  db = await openDatabase(testDb.url);
  ns = await createNetns("nfbulk");
  service = createFarmService({ db, target: ns.target, kernel: countingKernel(applies) });
  for (let i = 1; i <= 5; i++) {
    const r = await service.createFarm(farm(i, i <= 3 ? ["203.0.113.10", "203.0.113.11"] : ["203.0.113.12", "203.0.113.13"]));
    expect(r).toMatchObject({ ok: true });
  }
});

afterAll(async () => {
  if (ns) await deleteNetns(ns.name);
  if (testDb) await disconnectPrisma(testDb.url);
  await testDb?.drop();
});

describe("bulk farm operation", () => {
  it("drains an address in exactly the chosen farms that have it, in one apply", async () => {
    applies.length = 0;
    const { result, farms } = await service.bulk(["b1", "b2", "b3", "b4"], { kind: "drain", ip: "203.0.113.10" });
    expect(result).toMatchObject({ ok: true, outcome: "applied" });
    expect(result.message).toMatch(/^Backend 203\.0\.113\.10 is draining in 3 farms: b1, b2, b3/);
    expect(farms).toEqual(["b1", "b2", "b3"]);
    expect(applies).toEqual([["b1", "b2", "b3"]]);
    const rows = await service.listFarms();
    for (const r of rows) {
      const b10 = r.backends.find((b) => b.ip === "203.0.113.10");
      if (["b1", "b2", "b3"].includes(r.name)) expect(b10?.state).toBe("maintenance");
      else expect(r.backends.every((b) => b.state === "up")).toBe(true);
      expect(r.backends.find((b) => b.ip === "203.0.113.11")?.state ?? "up").toBe("up");
      expect(r.applyState).toBe("applied");
    }
    // The kernel no longer marks new connections of b1..b3 for .10 (its translation stays for the open ones), and still does for .11 and b4's.
    const mangle = await iptablesSave(ns.target, "mangle");
    const marked = (mark: number) => new RegExp(`MARK --set-x?mark 0x${mark.toString(16)}\\b`).test(mangle);
    for (const r of rows) {
      for (const b of r.backends) expect(marked(b.mark), `${r.name} ${b.ip}`).toBe(!(b.ip === "203.0.113.10" && ["b1", "b2", "b3"].includes(r.name)));
    }
    const log = await service.history(1);
    expect(log[0]?.action).toBe("bulk drain backend 203.0.113.10 (3 farms)");
  });

  it("stops and starts several farms in one apply each, their rules leaving and coming back", async () => {
    const before = await kernelText();
    applies.length = 0;
    const stop = await service.bulk(["b4", "b5"], { kind: "stop" });
    expect(stop.result).toMatchObject({ ok: true, outcome: "applied" });
    expect(applies).toEqual([["b4", "b5"]]);
    const stopped = await iptablesSave(ns.target, "nat");
    expect(stopped).not.toMatch(/--dport 8004\b/);
    expect(stopped).not.toMatch(/--dport 8005\b/);
    expect(stopped).toMatch(/--dport 8003\b|203\.0\.113\.11:80/);
    const start = await service.bulk(["b4", "b5"], { kind: "start" });
    expect(start.result).toMatchObject({ ok: true });
    expect(applies).toHaveLength(2);
    expect(await kernelText()).toBe(before);
  });

  it("refuses the whole change when one chosen farm does not exist: database and kernel untouched", async () => {
    const before = await snapshot();
    applies.length = 0;
    const r = await service.bulk(["b1", "nope"], { kind: "stop" });
    expect(r.result).toMatchObject({ ok: false, reason: "not-found" });
    expect(r.farms).toEqual([]);
    expect(applies).toEqual([]);
    expect(await snapshot()).toEqual(before);
    const none = await service.bulk(["b4", "b5"], { kind: "drain", ip: "203.0.113.99" });
    expect(none.result).toMatchObject({ ok: false, reason: "invalid" });
    expect(none.result.message).toMatch(/No chosen farm has backend 203\.0\.113\.99 in service: nothing changed/);
    expect(applies).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("a refused apply changes no farm's rules and marks the touched farms failed", async () => {
    const before = await kernelText();
    const failing: FarmService = createFarmService({
      db,
      target: ns.target,
      kernel: { ...directKernel, applyFarms: (input, opts) => directKernel.applyFarms(input, { ...opts, injectFault: "nat" }) },
    });
    const r = await failing.bulk(["b1", "b2"], { kind: "stop" });
    expect(r.result).toMatchObject({ ok: false, reason: "apply-failed" });
    expect(await kernelText()).toBe(before);
    const rows = await service.listFarms();
    expect(rows.filter((x) => x.applyState === "failed").map((x) => x.name)).toEqual(["b1", "b2"]);
    // Putting them back as they were: started, applied.
    expect((await service.bulk(["b1", "b2"], { kind: "start" })).result).toMatchObject({ ok: true });
    expect(await kernelText()).toBe(before);
  });

  it("deletes several farms in one apply, rows removed only after their rules left", async () => {
    applies.length = 0;
    const r = await service.bulk(["b4", "b5"], { kind: "delete" });
    expect(r.result).toMatchObject({ ok: true, outcome: "removed" });
    expect(applies).toEqual([["b4", "b5"]]);
    expect((await service.listFarmNames())).toEqual(["b1", "b2", "b3"]);
    const nat = await iptablesSave(ns.target, "nat");
    expect(nat).not.toMatch(/203\.0\.113\.1[23]/);
    expect(nat).toMatch(/203\.0\.113\.11:80/);
  });

  it("reads a backend address with or without its port, and refuses anything else", () => {
    expect(parseBackendAddress(" 203.0.113.10 ")).toEqual({ ip: "203.0.113.10", port: null });
    expect(parseBackendAddress("203.0.113.10:80")).toEqual({ ip: "203.0.113.10", port: 80 });
    for (const bad of ["", "203.0.113", "203.0.113.256", "203.0.113.10:0", "203.0.113.10:70000", "host:80"]) expect(parseBackendAddress(bad)).toBeNull();
  });
});
