import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { importFarms } from "../../lib/service/farm-io.ts";
import { MARK_CAPACITY, MARK_MIN } from "../../lib/farms/marks.ts";
import { FarmListSchema, type FarmInput } from "../../lib/farms/schema.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { MIXED_FARMS } from "../helpers/farms.ts";
import { createTestDatabase } from "../helpers/db.ts";
import { createNetns, deleteNetns, iptablesSave } from "../helpers/netns.ts";

/**
 * Issue 7, "the engine keeps its promises": each case here failed before its
 * fix. Real processes, a real database per file (SQLite, or PostgreSQL), real
 * netfilter in a bare namespace this file creates and always deletes.
 */
const ROOT = path.join(import.meta.dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "natfarm.mjs");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-defects-"));
// SQLite, or PostgreSQL in vitest's postgresql project.
const tdb = await createTestDatabase("defects");
const url = tdb.url;
const file = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
};
/** The CLI as operators run it, on this file's database. */
const natfarm = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [BIN, ...args], { reject: false, cwd: ROOT, env: { NATFARM_DATABASE_URL: url, ...env } });

let ns: { name: string; target: Target };
let db: PrismaClient;

beforeAll(async () => {
  ns = await createNetns("nfdef");
  db = await openDatabase(url);
});

// Every case starts from an empty database (a failed case must not leave farms in the next one's way).
beforeEach(async () => {
  await db.farm.deleteMany();
});

afterAll(async () => {
  if (ns) await deleteNetns(ns.name);
  await disconnectPrisma();
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function kernel(): Promise<string> {
  return ((await iptablesSave(ns.target, "mangle")) + (await iptablesSave(ns.target, "nat")))
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .join("\n");
}

/** n farms on distinct VIP:port pairs, `backends` each. */
function manyFarms(prefix: string, n: number, backends = 2): FarmInput[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `${prefix}${i}`,
    vip: `198.51.100.${1 + (i % 250)}`,
    ports: String(1000 + Math.floor(i / 250)),
    protocol: "tcp" as const,
    mode: "dnat" as const,
    backends: Array.from({ length: backends }, (_, k) => ({ ip: `203.0.113.${1 + k}`, port: 80 })),
  }));
}

describe("warnings: protocol all on every port", () => {
  const warning = /^warning: farm "any": protocol all on ports \* captures every connection to 198\.51\.100\.251/m;

  it("validate, apply and import say so on stderr and still succeed", async () => {
    const f = file("mixed.json", { farms: MIXED_FARMS });
    const v = await natfarm(["validate", "-f", f]);
    expect(v.exitCode).toBe(0);
    expect(v.stderr).toMatch(warning);
    const a = await natfarm(["apply", "-f", f, "-t", `netns:${ns.name}`, "--dry-run"]);
    expect(a.exitCode).toBe(0);
    expect(a.stderr).toMatch(warning);
    const i = await natfarm(["import", "-f", f]);
    expect(i.exitCode).toBe(0);
    expect(i.stderr).toMatch(warning);
    // The import wrote the farms as pending and nothing into the kernel.
    expect((await db.farm.findMany()).map((r) => r.applyState)).toEqual(["pending", "pending", "pending", "pending"]);
    expect(await kernel()).not.toMatch(/FARM_/);
  });

  it("the console's result carries the warning", async () => {
    const service = createFarmService({ db, target: null });
    const r = await service.createFarm({ name: "every", vip: "198.51.100.77", ports: "*", protocol: "all", mode: "nat", backends: [{ ip: "203.0.113.10" }] });
    expect(r).toMatchObject({ ok: true, warnings: [expect.stringMatching(/^farm "every": protocol all on ports \*/)] });
  });
});

describe("a VIP on a backend's address", () => {
  it("is refused with exit 2 naming farm, backend and field; nothing applied, nothing imported", async () => {
    const before = await kernel();
    const f = file("vip-backend.json", {
      farms: [
        { name: "a", vip: "198.51.100.10", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80 }] },
        { name: "b", vip: "198.51.100.11", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "198.51.100.10", port: 80 }] },
      ],
    });
    for (const args of [["validate", "-f", f], ["apply", "-f", f, "-t", `netns:${ns.name}`], ["import", "-f", f]]) {
      const r = await natfarm(args);
      expect(r.exitCode, args[0]).toBe(2);
      expect(r.stderr, args[0]).toMatch(/farm "b" › backend 1 \(198\.51\.100\.10\) › ip: 198\.51\.100\.10 is the VIP of farm "a"/);
    }
    expect(await kernel()).toBe(before);
    expect(await db.farm.count()).toBe(0);
  });
});

describe("a VIP on the target's own address (the applier refuses it)", () => {
  it("the console answers a field error on vip and saves nothing; import --apply refuses before writing (exit 2)", async () => {
    await execa("ip", ["-n", ns.name, "addr", "add", "198.51.100.60/32", "dev", "lo"]);
    try {
      const before = await kernel();
      // Earlier imports in this file are in the log too: nothing more may be added.
      const logged = await db.applyLog.count();
      const service = createFarmService({ db, target: ns.target });
      const farm = { name: "own", vip: "198.51.100.60", ports: "80", protocol: "tcp" as const, mode: "dnat" as const, backends: [{ ip: "203.0.113.10", port: 80 }] };
      const r = await service.createFarm(farm);
      expect(r).toMatchObject({ ok: false, reason: "invalid", errors: { vip: [expect.stringMatching(/198\.51\.100\.60 is an address of the balancer itself/)] } });
      expect(await db.farm.count()).toBe(0);
      expect(await db.applyLog.count()).toBe(logged);
      const i = await natfarm(["import", "-f", file("own.json", { farms: [farm] }), "--apply", "-t", `netns:${ns.name}`]);
      expect(i.exitCode).toBe(2);
      expect(i.stderr).toMatch(/farm "own" › vip: 198\.51\.100\.60 is an address of the balancer itself/);
      expect(await db.farm.count()).toBe(0);
      expect(await kernel()).toBe(before);
    } finally {
      await execa("ip", ["-n", ns.name, "addr", "del", "198.51.100.60/32", "dev", "lo"]);
    }
  });
});

describe("running out of marks", () => {
  it("is bad input (exit 2) naming the farm and backend that gets no mark; nothing applied", async () => {
    const capacity = MARK_CAPACITY;
    const farms = manyFarms("m", Math.ceil((capacity + 1) / 64), 64);
    const last = farms[farms.length - 1]!;
    last.backends = last.backends!.slice(0, (capacity + 1) % 64 || 64);
    expect(farms.reduce((n, f) => n + f.backends!.length, 0)).toBe(capacity + 1);
    const f = file("marks.json", { farms });
    const before = await kernel();
    const message = new RegExp(`farm "${last.name}" › backend 1 \\(203\\.0\\.113\\.1\\) › mark: no netfilter mark left for this backend`);
    for (const args of [["validate", "-f", f], ["render", "-f", f], ["apply", "-f", f, "-t", `netns:${ns.name}`]]) {
      const r = await natfarm(args);
      expect(r.exitCode, args[0]).toBe(2);
      expect(r.stderr, args[0]).toMatch(message);
    }
    expect(await kernel()).toBe(before);
  });
});

describe("a closed standard output (natfarm ... | head)", () => {
  /** Runs the command with stdout into `head -n 1`; the command's own exit status and stderr. */
  async function intoHead(args: string[]) {
    const err = path.join(dir, "head.err");
    const quoted = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(" ");
    const r = await execa("bash", ["-c", `${quoted} 2>'${err}' | head -n 1 >/dev/null; echo "\${PIPESTATUS[0]}"`], { cwd: ROOT, env: { NATFARM_DATABASE_URL: url }, reject: false });
    return { status: Number(r.stdout.trim()), stderr: fs.readFileSync(err, "utf8") };
  }

  it("render, diff, tables and export end quietly with their own exit status", async () => {
    // Well over a pipe's 64 KiB buffer, so that the writes meet the closed pipe.
    const f = file("big.json", { farms: manyFarms("p", 600) });
    try {
      expect((await natfarm(["apply", "-f", f, "-t", `netns:${ns.name}`])).exitCode).toBe(0);
      expect((await natfarm(["import", "-f", f])).exitCode).toBe(0);
      for (const args of [["render", "-f", f], ["diff", "-f", file("other.json", { farms: manyFarms("q", 600) }), "-t", `netns:${ns.name}`], ["tables", "-t", `netns:${ns.name}`], ["export"]]) {
        const r = await intoHead(args);
        expect(r.stderr, args[0]).toBe("");
        expect(r.status, args[0]).toBe(0);
      }
    } finally {
      expect((await natfarm(["flush", "-t", `netns:${ns.name}`])).exitCode).toBe(0);
    }
  });
});

describe("concurrent writers", () => {
  it("two `natfarm import` of the same farms at once: both succeed (the second updates what the first created)", async () => {
    const farms = manyFarms("c", 2000);
    const a = file("race-a.json", { farms });
    const b = file("race-b.json", { farms: farms.map((f, i) => (i === 0 ? { ...f, ports: "2000" } : f)) });
    for (let round = 0; round < 2; round++) {
      await db.farm.deleteMany();
      const runs = await Promise.all([natfarm(["import", "-f", a]), natfarm(["import", "-f", b])]);
      for (const r of runs) {
        expect(r.stderr).not.toMatch(/Unique constraint|Invalid `|prisma/i);
        expect(r.exitCode, r.stderr).toBe(0);
      }
      expect(await db.farm.count()).toBe(2000);
      expect(["1000", "2000"]).toContain((await db.farm.findUnique({ where: { name: "c0" } }))!.ports);
    }
  });

  /** A database client on which another writer creates `before` right before the caller's first write transaction. */
  function racedBy(before: () => Promise<unknown>): PrismaClient {
    let raced = false;
    return new Proxy(db, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop === "$transaction") {
          return async (arg: unknown, ...rest: unknown[]) => {
            if (typeof arg === "function" && !raced) {
              raced = true;
              await before();
            }
            return (value as (...a: unknown[]) => unknown).call(target, arg, ...rest);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  it("importFarms: a farm another process created meanwhile is updated, not a raw unique-constraint error", async () => {
    const mine = FarmListSchema.parse([{ name: "x", vip: "198.51.100.20", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80 }] }]);
    const theirs = FarmListSchema.parse([{ ...mine[0]!, ports: "81" }]);
    const summary = await importFarms(racedBy(() => importFarms(db, theirs)), mine);
    expect(summary).toMatchObject({ created: [], updated: ["x"] });
    expect((await db.farm.findUnique({ where: { name: "x" } }))!.ports).toBe("80");
  });

  it("createFarm: a farm another process created meanwhile is a field error on name, a mark taken meanwhile is not an error", async () => {
    const farm = { name: "y", vip: "198.51.100.21", ports: "80", protocol: "tcp" as const, mode: "dnat" as const, backends: [{ ip: "203.0.113.10", port: 80 }] };
    const otherRow = (name: string, mark: number) =>
      db.farm.create({ data: { name, vip: "198.51.100.22", ports: "80", protocol: "tcp", mode: "dnat", backends: { create: [{ position: 0, ip: "203.0.113.11", port: 80, mark }] } } });

    const sameName = await createFarmService({ db: racedBy(() => otherRow("y", 0x7000)), target: null }).createFarm(farm);
    expect(sameName).toMatchObject({ ok: false, reason: "invalid", errors: { name: ['a farm named "y" already exists'] } });
    expect((await db.farm.findUnique({ where: { name: "y" }, include: { backends: true } }))!.backends[0]!.mark).toBe(0x7000);
    await db.farm.deleteMany();

    // The lowest free mark, 0x200, is what the service is about to give the new backend.
    const sameMark = await createFarmService({ db: racedBy(() => otherRow("z", MARK_MIN)), target: null }).createFarm(farm);
    expect(sameMark).toMatchObject({ ok: true, outcome: "pending" });
    const row = (await db.farm.findUnique({ where: { name: "y" }, include: { backends: true } }))!;
    expect(row.backends[0]!.mark).not.toBe(MARK_MIN);
  });

  it("createFarm from two processes at once: one creates, the other gets the field error", async () => {
    await importFarms(db, FarmListSchema.parse(manyFarms("s", 2000)));
    const script = file(
      "create.mts",
      `import { openDatabase } from ${JSON.stringify(path.join(ROOT, "lib/db/client.ts"))};
import { createFarmService } from ${JSON.stringify(path.join(ROOT, "lib/service/farm-service.ts"))};
const db = await openDatabase(process.env.NATFARM_DATABASE_URL);
const r = await createFarmService({ db, target: null }).createFarm({ name: "dup", vip: "198.51.100.30", ports: process.argv[2], protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80 }] });
process.stdout.write(JSON.stringify(r));
await db.$disconnect();`,
    );
    const run = (port: string) => execa(process.execPath, ["--import", "tsx", script, port], { cwd: ROOT, env: { NATFARM_DATABASE_URL: url }, reject: false });
    const runs = await Promise.all([run("5000"), run("5001")]);
    for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
    const results = runs.map((r) => JSON.parse(r.stdout));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([expect.objectContaining({ reason: "invalid", errors: { name: ['a farm named "dup" already exists'] } })]);
  });
});

describe("one truth per farm: database, apply log and kernel", () => {
  it("a farm imported without --apply stays pending and out of the kernel while a farm sharing its chains is applied and changed", async () => {
    // Neighbour VIPs (one dispatch node) and neighbour marks (one mark block): a's changes rewrite chains b would live in.
    const a = "pa";
    const b = "pb";
    const farmA = { name: a, vip: "198.51.100.40", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 80 }] };
    const farmB = { name: b, vip: "198.51.100.41", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.11", port: 80 }] };
    const ia = await natfarm(["import", "-f", file("pa.json", { farms: [farmA] }), "--apply", "-t", `netns:${ns.name}`]);
    expect(ia.exitCode, ia.stderr).toBe(0);
    const ib = await natfarm(["import", "-f", file("pb.json", { farms: [farmB] })]);
    expect(ib.exitCode, ib.stderr).toBe(0);
    expect(ib.stdout).toMatch(/pending/);
    expect(await kernel()).toContain(`FARM_${a}_0_`);
    expect(await kernel()).not.toContain(`FARM_${b}_`);

    const service = createFarmService({ db, target: ns.target });
    const logged = await db.applyLog.count();
    const steps = [
      () => service.updateFarm(a, { ports: "81" }),
      () => service.addBackend(a, { ip: "203.0.113.12", port: 80 }),
      () => service.setMode(a, "nat"),
      () => service.reapply(a),
    ];
    for (const step of steps) {
      const r = await step();
      expect(r.ok, r.message).toBe(true);
      expect((await db.farm.findUnique({ where: { name: b } }))!.applyState).toBe("pending");
      expect((await db.farm.findUnique({ where: { name: a } }))!.applyState).toBe("applied");
      const live = await kernel();
      expect(live).toContain(`FARM_${a}_0_`);
      expect(live).not.toContain(`FARM_${b}_`);
    }
    const log = await db.applyLog.findMany({ orderBy: { id: "asc" }, skip: logged });
    expect(log.map((l) => JSON.parse(l.farms))).toEqual(steps.map(() => [a]));

    // A full apply brings the pending farm in and says so, on the row and in the log.
    const all = await service.applyAll();
    expect(all.ok).toBe(true);
    expect((await db.farm.findUnique({ where: { name: b } }))!.applyState).toBe("applied");
    expect(await kernel()).toContain(`FARM_${b}_0_`);
    const last = await db.applyLog.findFirst({ orderBy: { id: "desc" } });
    expect(JSON.parse(last!.farms)).toEqual(expect.arrayContaining([a, b]));
    expect((await service.deleteFarm(a)).ok).toBe(true);
    expect((await service.deleteFarm(b)).ok).toBe(true);
    expect(await kernel()).not.toMatch(/FARM_/);
  });
});

describe("issue 11: a CLI import is in History's apply log", () => {
  it("`natfarm import` logs what it wrote (target database, pending until applied); the same file again is a no-change row; a refused file logs nothing", async () => {
    const farm: FarmInput = { name: "logged", vip: "198.51.100.77", ports: "80", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.7", port: 80 }] };
    const f = file("logged.json", { farms: [farm] });
    const last = () => db.applyLog.findFirst({ orderBy: { id: "desc" } });
    const before = await db.applyLog.count();
    const r = await natfarm(["import", "-f", f]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await db.applyLog.count()).toBe(before + 1);
    const row = (await last())!;
    expect(row).toMatchObject({ action: "import", target: "database", result: "ok" });
    expect(JSON.parse(row.farms)).toEqual(["logged"]);
    expect(row.summary).toBe("created logged: written to the database, pending until applied");

    expect((await natfarm(["import", "-f", f])).exitCode).toBe(0);
    expect(await last()).toMatchObject({ action: "import", target: "database", result: "noop" });

    const count = await db.applyLog.count();
    const bad = await natfarm(["import", "-f", file("bad-import.json", { farms: [{ ...farm, ports: "0" }] })]);
    expect(bad.exitCode).toBe(2);
    expect(await db.applyLog.count()).toBe(count);
  });
});
