import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import { SNAPSHOT_EVERY, snapshotsWritten, stateAt } from "../../lib/service/config-history.ts";
import { importFarms } from "../../lib/service/farm-io.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * A one-farm change at scale does only the work its farm needs: a change the
 * checks across farms cannot see (a weight) is checked on its farm alone,
 * one that can (an address) against every farm, and the history's periodic
 * snapshot of the whole configuration is written after the change rather
 * than inside it — and still holds exactly the state at its revision.
 * The database only (target none): the kernel side is the scoped apply's
 * own tests'.
 */
let t: TestDatabase;
let db: PrismaClient;
let service: FarmService;

const farm = (i: number) => ({
  name: `f${i}`,
  vip: `198.51.100.${10 + i}`,
  ports: "80",
  protocol: "tcp" as const,
  mode: "dnat" as const,
  backends: [
    { ip: "203.0.113.10", port: 80, weight: 1 },
    { ip: "203.0.113.11", port: 80, weight: 1 },
  ],
});

const marksOf = async (name: string) => (await service.getFarm(name))!.backends.map((b) => b.mark);
const revisionCount = () => db.configRevision.count();

beforeAll(async () => {
  t = await createTestDatabase("one-farm-change");
  db = await openDatabase(t.url);
  await importFarms(db, FarmListSchema.parse([farm(0), farm(1), farm(2)]));
  service = createFarmService({ db, target: null });
});

afterAll(async () => {
  await snapshotsWritten();
  await disconnectPrisma();
  await t?.drop();
});

describe("a one-farm change is checked for what it changes", () => {
  it("a weight is checked on its farm alone; an address against every farm", async () => {
    const [m0, m1] = await marksOf("f1");
    expect(await service.updateBackend("f1", m0!, { weight: 4 })).toMatchObject({ ok: true });
    expect((await service.getFarm("f1"))!.backends.map((b) => b.weight)).toEqual([4, 1]);

    // The farm's own checks still run on the quick path: nothing written.
    const before = await revisionCount();
    const zero = await service.updateBackend("f1", m1!, { weight: 0 });
    expect(zero).toMatchObject({ ok: false, reason: "invalid" });
    expect(JSON.stringify(zero.errors)).toMatch(/weight must be/);
    const twin = await service.updateBackend("f1", m1!, { ip: "203.0.113.10" });
    expect(twin).toMatchObject({ ok: false, reason: "invalid" });
    expect(JSON.stringify(twin.errors)).toMatch(/duplicate backend/);
    // An address is what the checks across farms read: another farm's VIP is refused.
    const onVip = await service.updateBackend("f1", m1!, { ip: "198.51.100.12" });
    expect(onVip).toMatchObject({ ok: false, reason: "invalid" });
    expect(JSON.stringify(onVip.errors)).toMatch(/is the VIP of farm ..f2/);
    expect(await revisionCount()).toBe(before);
    expect((await service.getFarm("f1"))!.backends.map((b) => [b.ip, b.weight])).toEqual([
      ["203.0.113.10", 4],
      ["203.0.113.11", 1],
    ]);
  });

  it("a farm another process left overlapping does not block an unrelated weight change, and is still refused for what it changes", async () => {
    // Written past the service (as an older version or a hand edit could have): f3 on f0's VIP and port.
    const clash = await db.farm.create({ data: { name: "f3", vip: "198.51.100.10", ports: "80", protocol: "tcp", mode: "dnat", status: "up", scheduler: "weight", backends: { create: [{ position: 0, ip: "203.0.113.20", port: 80, weight: 1, mark: 0x2f0, state: "up", priority: 1 }] } } });
    try {
      const [m] = await marksOf("f2");
      expect(await service.updateBackend("f2", m!, { weight: 7 })).toMatchObject({ ok: true });
      // A change the set's checks do see is checked against every farm, the overlap included.
      const moved = await service.updateFarm("f2", { vip: "198.51.100.10" });
      expect(moved).toMatchObject({ ok: false, reason: "invalid" });
      expect(JSON.stringify(moved.errors)).toMatch(/overlaps farm/);
    } finally {
      await db.farm.delete({ where: { id: clash.id } });
    }
  });
});

describe("the history's snapshot of the whole configuration", () => {
  it("is written after the change that makes it due, and holds exactly the state at that revision", async () => {
    const lastSnapshot = async () => (await db.configRevision.findFirst({ where: { snapshot: { not: null } }, orderBy: { id: "desc" }, select: { id: true } }))!.id;
    const base = await lastSnapshot();
    const [m] = await marksOf("f0");
    const weights = new Map<number, number>();
    // Up to the revision whose snapshot is due, then one more change of another farm right behind it.
    for (let i = 0; ; i++) {
      const w = (i % 90) + 2;
      expect(await service.updateBackend("f0", m!, { weight: w })).toMatchObject({ ok: true });
      const id = (await db.configRevision.findFirst({ orderBy: { id: "desc" }, select: { id: true } }))!.id;
      weights.set(id, w);
      if (id - base >= SNAPSHOT_EVERY) break;
    }
    const due = Math.max(...weights.keys());
    const [m2] = await marksOf("f2");
    expect(await service.updateBackend("f2", m2!, { weight: 9 })).toMatchObject({ ok: true });
    await snapshotsWritten();

    expect(await lastSnapshot()).toBe(due);
    const row = (await db.configRevision.findUnique({ where: { id: due }, select: { snapshot: true } }))!;
    const farms = (JSON.parse(row.snapshot!) as { farms: { name: string; backends: { weight?: number }[] }[] }).farms;
    expect(farms.map((f) => f.name)).toEqual(["f0", "f1", "f2"]);
    expect(farms[0]!.backends[0]!.weight).toBe(weights.get(due));
    // The change written after it is not in it.
    expect(farms[2]!.backends[0]!.weight).toBe(7);
    // And the history rebuilds every revision from it as from the one before.
    expect((await stateAt(db, due)).map((f) => f.backends[0]!.weight)).toEqual(farms.map((f) => f.backends[0]!.weight));
    expect((await stateAt(db, due + 1))[2]!.backends[0]!.weight).toBe(9);
  });
});
