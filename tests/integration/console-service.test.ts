import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { exportFarms, importFarms } from "../../lib/service/farm-io.ts";
import { GUIDE_EXAMPLE } from "../../lib/console/guide-example.ts";
import { driftOfFarm } from "../../lib/applier/drift.ts";
import { backendCounts, farmStatus } from "../../lib/console/farm-model.ts";
import { rowToResolved } from "../../lib/service/farm-rows.ts";
import { parseFarmFile } from "../../lib/farms/file.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { createNetns, deleteNetns, iptables, iptablesSave } from "../helpers/netns.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The console's farm lifecycle against a real database, SQLite or PostgreSQL
 * (vitest's projects; through Prisma, migrated by the project's runner) and real netfilter in a bare
 * namespace this file creates and always deletes.
 */
let dir: string;
let url: string;
let testDb: TestDatabase | undefined;
let faultFile: string;
let ns: { name: string; target: Target };
let db: PrismaClient;
let service: FarmService;

/** Both tables as iptables-save prints them, without the timestamped comment lines. */
async function kernel(): Promise<string> {
  const text = (await iptablesSave(ns.target, "mangle")) + (await iptablesSave(ns.target, "nat"));
  return text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");
}

const web = {
  name: "web",
  vip: "198.51.100.250",
  ports: "80",
  protocol: "tcp" as const,
  mode: "dnat" as const,
  backends: [
    { ip: "203.0.113.10", port: 80, weight: 1 },
    { ip: "203.0.113.11", port: 80, weight: 2 },
  ],
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-console-"));
  testDb = await createTestDatabase("console");
  url = testDb.url;
  faultFile = path.join(dir, "fault");
  db = await openDatabase(url);
  ns = await createNetns("nfcon");
  service = createFarmService({ db, target: ns.target, faultFile });
});

afterAll(async () => {
  if (ns) await deleteNetns(ns.name);
  await disconnectPrisma(url);
  await testDb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => fs.rmSync(faultFile, { force: true }));

describe("console farm service", () => {
  it("creates a farm: database rows with allocated marks, rules applied in the namespace, apply logged", async () => {
    const r = await service.createFarm(web);
    expect(r).toMatchObject({ ok: true, outcome: "applied" });

    const row = (await service.getFarm("web"))!;
    expect(row.applyState).toBe("applied");
    expect(row.applyError).toBeNull();
    expect(row.backends.map((b) => b.position)).toEqual([0, 1]);
    const [m0, m1] = row.backends.map((b) => b.mark);
    expect(m0).toBeGreaterThanOrEqual(0x200);
    expect(m1).not.toBe(m0);

    const live = await kernel();
    expect(live).toContain(`--comment FARM_web_0_ -j MARK --set-xmark 0x${m0!.toString(16)}/0xffffffff`);
    expect(live).toContain(`--comment FARM_web_1_ -j DNAT --to-destination 203.0.113.11:80`);
    // Weights 1:2 → the first backend's rule matches with 1/3.
    expect(live).toContain("--probability 0.33333333349");

    const log = await db.applyLog.findMany();
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ action: "create", result: "ok", target: `netns:${ns.name}` });
    expect((await driftOfFarm(ns.target, rowToResolved(row))).inSync).toBe(true);
  });

  it("creates the guide's farm with its own marks, the rules the guide shows", async () => {
    const r = await service.createFarm(GUIDE_EXAMPLE);
    expect(r.ok).toBe(true);
    const live = await kernel();
    expect(live).toContain("--probability 1.00000000000 -m multiport --dports 443 -m comment --comment FARM_app_1_ -j MARK --set-xmark 0x20d/0xffffffff");
    expect(live).toContain("--probability 0.50000000000 -m multiport --dports 443 -m comment --comment FARM_app_0_ -j MARK --set-xmark 0x20c/0xffffffff");
    expect(live).toContain("-m mark --mark 0x20c -m comment --comment FARM_app_0_ -j DNAT --to-destination 192.168.1.10:443");
    expect(live).not.toContain("SNAT");
  });

  it("refuses bad input with field errors and writes nothing", async () => {
    const before = { farms: await db.farm.count(), backends: await db.backend.count(), log: await db.applyLog.count(), kernel: await kernel() };

    const bad = await service.createFarm({ ...web, name: "bad", vip: "300.1.2.3", backends: [{ ip: "203.0.113.12", port: 80, weight: 0 }] });
    expect(bad.ok).toBe(false);
    if (bad.ok || bad.reason !== "invalid") throw new Error("expected invalid");
    expect(Object.keys(bad.errors)).toEqual(expect.arrayContaining(["vip", "backends.0.weight"]));
    expect(bad.errors["backends.0.weight"]![0]).toMatch(/weight must be a whole number from 1 to 100/);

    // Cross-farm checks run on the whole resulting set: duplicate name, overlapping VIP:port, duplicate mark.
    const dupName = await service.createFarm({ ...web, vip: "198.51.100.251" });
    expect(dupName).toMatchObject({ ok: false, reason: "invalid" });
    expect(dupName.errors?.name?.[0]).toBe(`a farm named "web" already exists`);
    const overlap = await service.createFarm({ ...web, name: "web2" });
    expect(overlap.errors?.ports?.[0]).toMatch(/overlaps farm "web"/);
    const dupMark = await service.createFarm({ ...web, name: "web3", vip: "198.51.100.252", backends: [{ ip: "203.0.113.10", port: 80, mark: "0x20c" }] });
    expect(dupMark.errors?.["backends.0.mark"]?.[0]).toMatch(/already used by farm "app"/);
    const badEdit = await service.updateBackend("web", (await service.getFarm("web"))!.backends[0]!.mark, { weight: 500 });
    expect(badEdit.errors?.["backends.0.weight"]).toBeDefined();

    expect(await db.farm.count()).toBe(before.farms);
    expect(await db.backend.count()).toBe(before.backends);
    expect(await db.applyLog.count()).toBe(before.log);
    expect(await kernel()).toBe(before.kernel);
    expect((await service.getFarm("web"))!.applyState).toBe("applied");
  });

  it("records a failed apply on the farm and in the log, and leaves the kernel as it was", async () => {
    const before = await kernel();
    fs.writeFileSync(faultFile, "nat\n");
    const r = await service.addBackend("web", { ip: "203.0.113.12", port: 80, weight: 1 });
    expect(r).toMatchObject({ ok: false, reason: "apply-failed", farm: "web" });
    if (r.ok || r.reason !== "apply-failed") throw new Error("expected apply-failed");
    expect(r.iptables.length).toBeGreaterThan(0);

    const row = (await service.getFarm("web"))!;
    expect(row.applyState).toBe("failed");
    expect(row.applyError).toMatch(/iptables-restore/);
    // The database keeps the desired state (three backends); the kernel keeps the old rules.
    expect(row.backends).toHaveLength(3);
    expect(await kernel()).toBe(before);
    const last = await db.applyLog.findFirst({ orderBy: { id: "desc" } });
    expect(last).toMatchObject({ result: "failed", action: "add backend 203.0.113.12:80" });
    expect(last!.error).toBeTruthy();

    // Without the fault, re-applying brings the kernel to the database.
    fs.rmSync(faultFile);
    const again = await service.reapply("web");
    expect(again).toMatchObject({ ok: true, outcome: "applied" });
    expect((await service.getFarm("web"))!.applyState).toBe("applied");
    expect(await kernel()).toContain("FARM_web_2_ -j DNAT --to-destination 203.0.113.12:80");
  });

  it("keeps each backend's mark when another backend is removed", async () => {
    const row = (await service.getFarm("web"))!;
    const [first, second, third] = row.backends;
    const r = await service.removeBackend("web", first!.mark);
    expect(r.ok).toBe(true);
    const after = (await service.getFarm("web"))!;
    expect(after.backends.map((b) => b.mark)).toEqual([second!.mark, third!.mark]);
    expect(after.backends.map((b) => b.position)).toEqual([0, 1]);
    const live = await kernel();
    expect(live).not.toContain(`--mark 0x${first!.mark.toString(16)} `);
    expect(live).toContain(`-m mark --mark 0x${second!.mark.toString(16)} -m comment --comment FARM_web_0_ -j DNAT --to-destination 203.0.113.11:80`);
  });

  it("switches NAT type, stops and starts, detects drift and re-applies", async () => {
    expect((await service.setMode("web", "nat")).ok).toBe(true);
    expect(await kernel()).toContain("-j SNAT --to-source 198.51.100.250");
    expect((await service.setStatus("web", "stopped")).ok).toBe(true);
    expect(await kernel()).not.toContain("FARM_web_");
    expect((await service.setStatus("web", "up")).ok).toBe(true);
    expect(await kernel()).toContain("FARM_web_0_");

    // Someone deletes one of natfarm's rules by hand.
    const row = (await service.getFarm("web"))!;
    const chain = (await kernel()).split("\n").find((l) => l.includes("FARM_web_0_ -j DNAT"))!;
    await iptables(ns.target, ["-t", "nat", ...chain.replace(/^-A /, "-D ").split(" ")]);
    const drift = await driftOfFarm(ns.target, rowToResolved(row));
    expect(drift.inSync).toBe(false);
    expect(drift.missing.join("\n")).toContain("FARM_web_0_ -j DNAT");
    expect((await service.reapply("web")).ok).toBe(true);
    expect((await driftOfFarm(ns.target, rowToResolved((await service.getFarm("web"))!))).inSync).toBe(true);
  });

  it("keeps every farm setting when one field changes (persistence, health check, priority)", async () => {
    const r = await service.createFarm({
      name: "keep",
      vip: "198.51.100.240",
      ports: "443",
      protocol: "tcp",
      mode: "dnat",
      persistence: "srcip",
      persistenceTtl: 300,
      healthcheck: { type: "tcp", interval: 7 },
      backends: [{ ip: "203.0.113.10", port: 443, priority: 2 }],
    });
    expect(r.ok).toBe(true);
    const before = (await service.getFarm("keep"))!;
    expect((await service.setMode("keep", "nat")).ok).toBe(true);
    expect((await service.addBackend("keep", { ip: "203.0.113.11", port: 443 })).ok).toBe(true);
    const after = (await service.getFarm("keep"))!;
    expect(after).toMatchObject({ mode: "nat", persistence: "srcip", persistenceTtl: 300 });
    expect(JSON.parse(after.healthcheck!)).toMatchObject({ type: "tcp", interval: 7 });
    expect(after.backends[0]).toMatchObject({ id: before.backends[0]!.id, priority: 2, mark: before.backends[0]!.mark });
    expect((await service.deleteFarm("keep")).ok).toBe(true);
  });

  it("exports and imports farms with their marks", async () => {
    const exported = await exportFarms(db);
    const file = parseFarmFile(JSON.stringify(exported));
    expect(file.farms.map((f) => f.name)).toEqual(["app", "web"]);
    const summary = await importFarms(db, file.farms);
    expect(summary).toMatchObject({ created: [], updated: [], removed: [], unchanged: ["app", "web"] });
    const changed = file.farms.map((f) => (f.name === "app" ? { ...f, ports: "8443" } : f));
    const s2 = await importFarms(db, changed);
    expect(s2.updated).toEqual(["app"]);
    const app = (await service.getFarm("app"))!;
    expect(app.applyState).toBe("pending");
    expect(app.backends.map((b) => b.mark)).toEqual([0x20c, 0x20d]);
  });

  it("deletes a farm: rules first, then the row", async () => {
    const r = await service.deleteFarm("app");
    expect(r).toMatchObject({ ok: true, outcome: "removed" });
    expect(await service.getFarm("app")).toBeNull();
    expect(await kernel()).not.toContain("FARM_app_");
    expect(await kernel()).toContain("FARM_web_");
  });

  describe("farm settings, maintenance and health", () => {
    const svc = {
      name: "svc",
      vip: "198.51.100.230",
      ports: "8080",
      protocol: "tcp" as const,
      mode: "dnat" as const,
      backends: [
        { ip: "203.0.113.10", port: 8080, weight: 1 },
        { ip: "203.0.113.11", port: 8080, weight: 1 },
        { ip: "203.0.113.12", port: 8080, weight: 1 },
      ],
    };
    const markRule = (mark: number) => new RegExp(`FARM_svc_\\d+_ -j MARK --set-xmark 0x${mark.toString(16)}/`);
    const dnatRule = (ip: string) => `-j DNAT --to-destination ${ip}:8080`;

    it("updateFarm changes scheduler, persistence with TTL and the health check; null removes the check", async () => {
      expect((await service.createFarm(svc)).ok).toBe(true);
      const r = await service.updateFarm("svc", {
        scheduler: "roundrobin",
        persistence: "srcip",
        persistenceTtl: 600,
        healthcheck: { type: "http", interval: 10, timeout: 3, failures: 2, passes: 4, port: 9000, path: "/healthz", expectStatus: 204 },
      });
      expect(r).toMatchObject({ ok: true, outcome: "applied" });
      const row = (await service.getFarm("svc"))!;
      expect(row).toMatchObject({ scheduler: "roundrobin", persistence: "srcip", persistenceTtl: 600, applyState: "applied", vip: svc.vip, ports: "8080" });
      expect(JSON.parse(row.healthcheck!)).toEqual({ type: "http", interval: 10, timeout: 3, failures: 2, passes: 4, port: 9000, path: "/healthz", expectStatus: 204 });
      const live = await kernel();
      expect(live).toContain("--mode nth --every 3 --packet 0");
      expect(live).toContain("--rcheck --seconds 600 --reap");

      const v = await service.updateFarm("svc", { vip: "198.51.100.231", ports: "8081", protocol: "tcp", scheduler: "weight", persistence: "none", healthcheck: null });
      expect(v.ok).toBe(true);
      const after = (await service.getFarm("svc"))!;
      expect(after).toMatchObject({ vip: "198.51.100.231", ports: "8081", scheduler: "weight", persistence: "none", healthcheck: null });
      const live2 = await kernel();
      expect(live2).toContain("-d 198.51.100.231/32");
      expect(live2).not.toContain("198.51.100.230");
      expect(live2).not.toMatch(/FARM_svc_.*--mode nth/);
      // Back to the original address, with a tcp check for the tests below.
      expect((await service.updateFarm("svc", { vip: svc.vip, ports: "8080", healthcheck: { type: "tcp", interval: 5 } })).ok).toBe(true);
    });

    it("updateFarm refuses bad settings with field errors and writes nothing", async () => {
      const before = { row: await db.farm.findUnique({ where: { name: "svc" } }), log: await db.applyLog.count(), kernel: await kernel() };
      const bad = await service.updateFarm("svc", {
        vip: "198.51.100.999",
        persistenceTtl: 0,
        healthcheck: { type: "tcp", interval: 2, timeout: 5, failures: 11 },
      });
      expect(bad).toMatchObject({ ok: false, reason: "invalid" });
      expect(bad.errors?.vip?.[0]).toBeTruthy();
      expect(bad.errors?.persistenceTtl?.[0]).toMatch(/persistenceTtl must be a whole number from 1 to 86400/);
      expect(bad.errors?.["healthcheck.failures"]?.[0]).toMatch(/failures must be a whole number from 1 to 10/);
      // A check type the protocol cannot carry, and http fields on a tcp check.
      const udp = await service.updateFarm("svc", { protocol: "udp", healthcheck: { type: "tcp" } });
      expect(udp.errors?.["healthcheck.type"]?.[0]).toMatch(/a tcp check cannot probe a udp farm/);
      const timeout = await service.updateFarm("svc", { healthcheck: { type: "tcp", interval: 2, timeout: 5 } });
      expect(timeout.errors?.["healthcheck.timeout"]?.[0]).toMatch(/must be shorter than the interval/);
      const path = await service.updateFarm("svc", { healthcheck: { type: "tcp", path: "/x" } });
      expect(path.errors?.["healthcheck.path"]?.[0]).toMatch(/belong to http checks/);
      const overlap = await service.updateFarm("svc", { vip: "198.51.100.250", ports: "80" });
      expect(overlap.errors?.ports?.[0]).toMatch(/overlaps farm "web"/);

      expect(await db.farm.findUnique({ where: { name: "svc" } })).toEqual(before.row);
      expect(await db.applyLog.count()).toBe(before.log);
      expect(await kernel()).toBe(before.kernel);
    });

    it("maintenance: drain keeps the translation and drops the backend from new connections, cut ends its connections, off brings it back", async () => {
      const [b0, b1] = (await service.getFarm("svc"))!.backends;
      const drained = await service.setMaintenance("svc", b0!.mark, "drain");
      expect(drained).toMatchObject({ ok: true, outcome: "applied" });
      let row = (await service.getFarm("svc"))!;
      expect(row.backends.map((b) => b.state)).toEqual(["maintenance", "up", "up"]);
      let live = await kernel();
      expect(live).not.toMatch(markRule(b0!.mark));
      expect(live).toMatch(markRule(b1!.mark));
      // Connections already bound to the drained backend keep their way.
      expect(live).toContain(dnatRule("203.0.113.10"));

      const cut = await service.setMaintenance("svc", b1!.mark, "cut");
      expect(cut).toMatchObject({ ok: true });
      expect(cut.message).toMatch(/(\d+ open connections? cut|It held no open connection)\./);
      row = (await service.getFarm("svc"))!;
      expect(row.backends.map((b) => b.state)).toEqual(["maintenance", "maintenance", "up"]);
      expect(await kernel()).not.toMatch(markRule(b1!.mark));

      expect((await service.setMaintenance("svc", b0!.mark, "off")).ok).toBe(true);
      expect((await service.setMaintenance("svc", b1!.mark, "off")).ok).toBe(true);
      row = (await service.getFarm("svc"))!;
      expect(row.backends.map((b) => b.state)).toEqual(["up", "up", "up"]);
      live = await kernel();
      expect(live).toMatch(markRule(b0!.mark));
      expect(live).toMatch(markRule(b1!.mark));
      expect(await service.setMaintenance("svc", 0xfff0, "drain")).toMatchObject({ ok: false, reason: "invalid" });
    });

    it("setBackendHealth takes backends out and back, leaves maintenance alone; all down is critical until one returns", async () => {
      const [b0, b1, b2] = (await service.getFarm("svc"))!.backends;
      expect((await service.setMaintenance("svc", b2!.mark, "drain")).ok).toBe(true);
      // The checker's verdict does not end an operator's maintenance, either way.
      expect((await service.setBackendHealth("svc", b2!.mark, "down")).ok).toBe(true);
      expect((await service.setBackendHealth("svc", b2!.mark, "up")).ok).toBe(true);
      expect((await service.getFarm("svc"))!.backends[2]!.state).toBe("maintenance");

      expect((await service.setBackendHealth("svc", b0!.mark, "down")).ok).toBe(true);
      let row = (await service.getFarm("svc"))!;
      expect(row.backends.map((b) => b.state)).toEqual(["down", "up", "maintenance"]);
      // Still balancing, but not over every backend: degraded, not running.
      expect(farmStatus(row, null, backendCounts(row))).toBe("degraded");
      expect(await kernel()).not.toMatch(markRule(b0!.mark));

      expect((await service.setBackendHealth("svc", b1!.mark, "down")).ok).toBe(true);
      row = (await service.getFarm("svc"))!;
      expect(farmStatus(row, null, backendCounts(row))).toBe("critical");
      expect(await kernel()).not.toMatch(/FARM_svc_\d+_ -j MARK/);

      expect((await service.setBackendHealth("svc", b1!.mark, "up")).ok).toBe(true);
      row = (await service.getFarm("svc"))!;
      expect(row.backends.map((b) => b.state)).toEqual(["down", "up", "maintenance"]);
      expect(farmStatus(row, null, backendCounts(row))).toBe("degraded");
      expect(await kernel()).toMatch(markRule(b1!.mark));
    });

    it("sees writes made by another process (the health checker) before its next change", async () => {
      const [b0, b1] = (await service.getFarm("svc"))!.backends;
      // Another writer on the same database: b0 comes back, b1 goes down.
      await db.backend.update({ where: { mark: b0!.mark }, data: { state: "up" } });
      await db.backend.update({ where: { mark: b1!.mark }, data: { state: "down" } });
      expect((await service.reapply("svc")).ok).toBe(true);
      const live = await kernel();
      expect(live).toMatch(markRule(b0!.mark));
      expect(live).not.toMatch(markRule(b1!.mark));
      expect((await service.deleteFarm("svc")).ok).toBe(true);
      expect(await kernel()).not.toContain("FARM_svc_");
    });
  });
});

describe("what the console says and records (issue 11)", () => {
  const says = {
    name: "says",
    vip: "198.51.100.240",
    ports: "80",
    protocol: "tcp" as const,
    mode: "dnat" as const,
    backends: [
      { ip: "203.0.113.10", port: 80, weight: 1 },
      { ip: "203.0.113.11", port: 80, weight: 1 },
    ],
  };
  const lastLog = async () => (await db.applyLog.findFirst({ orderBy: { id: "desc" } }))!;
  const statusOf = async (name: string) => {
    const row = (await service.getFarm(name))!;
    return farmStatus(row, null, backendCounts(row));
  };

  it("reports every field error of a new farm at once: port 0, a duplicate backend and an overlap with another farm", async () => {
    const before = { farms: await db.farm.count(), log: await db.applyLog.count(), kernel: await kernel() };
    const r = await service.createFarm({ ...says, name: "clash", vip: "198.51.100.250", backends: [{ ip: "203.0.113.10", port: 0 }, { ip: "203.0.113.11", port: 80 }, { ip: "203.0.113.11", port: 80 }] });
    expect(r).toMatchObject({ ok: false, reason: "invalid" });
    expect(Object.keys(r.errors ?? {}).sort()).toEqual(["backends.0.port", "backends.2.ip", "ports"]);
    expect(r.errors!.ports![0]).toMatch(/overlaps farm "web"/);
    expect(await db.farm.count()).toBe(before.farms);
    expect(await db.applyLog.count()).toBe(before.log);
    expect(await kernel()).toBe(before.kernel);
  });

  it("toasts say what happened; the NAT switch counts the rules the preview counts", async () => {
    const created = await service.createFarm(says);
    expect(created.message).toMatch(/^Farm says created: 198\.51\.100\.240:80 balanced over 2 backends\. \d+ rules added, 0 rules removed\.$/);
    const { farmView } = await import("../../lib/console/farm-view.ts");
    const preview = farmView((await service.getFarm("says"))!).modeDiff.filter((d) => d.text.startsWith("-A "));
    const appear = preview.filter((d) => d.kind === "added").length;
    const disappear = preview.filter((d) => d.kind === "removed").length;
    expect(appear).toBe(2);
    const nat = await service.setMode("says", "nat");
    expect(nat.message).toBe(`Farm says switched to NAT: the source is rewritten to the VIP, so backends see the VIP. ${appear} rules added, ${disappear} rules removed.`);
    expect((await service.setMode("says", "dnat")).ok).toBe(true);
  });

  it("History names the backend of a drain, a cut, an edit and a removal, and a health check for what it is", async () => {
    const [b0, b1] = (await service.getFarm("says"))!.backends;
    const drain = await service.setMaintenance("says", b0!.mark, "drain");
    expect(drain.message).toMatch(/^Backend 203\.0\.113\.10:80 of farm says is draining: no new connections, open ones continue\./);
    expect((await lastLog()).action).toBe("drain backend 203.0.113.10:80");
    expect((await service.setMaintenance("says", b0!.mark, "cut")).ok).toBe(true);
    expect((await lastLog()).action).toBe("cut backend 203.0.113.10:80");
    expect((await service.setMaintenance("says", b0!.mark, "off")).ok).toBe(true);
    expect((await lastLog()).action).toBe("back in service: backend 203.0.113.10:80");
    const edit = await service.updateBackend("says", b1!.mark, { weight: 3 });
    expect(edit.message).toMatch(/^Backend 203\.0\.113\.11:80 of farm says: weight 1 → 3\./);
    expect((await lastLog()).action).toBe("edit backend 203.0.113.11:80: weight 1 → 3");

    // A health check writes no rule: the log says what it was, not "settings – no change".
    const check = await service.updateFarm("says", { healthcheck: { type: "tcp", interval: 5 } }, "settings");
    expect(check.message).toMatch(/^Farm says: health check enabled \(tcp every 5 s\)\. The farm's rules did not change\.$/);
    expect(await lastLog()).toMatchObject({ action: "settings: health check enabled (tcp every 5 s)", result: "noop" });
    expect((await service.updateFarm("says", { healthcheck: null }, "settings")).ok).toBe(true);
    expect((await lastLog()).action).toBe("settings: health check disabled");
  });

  it("a farm without a backend up is critical, some out is degraded; removing the last backend says what it means", async () => {
    const [b0, b1] = (await service.getFarm("says"))!.backends;
    expect(await statusOf("says")).toBe("running");
    expect((await service.setMaintenance("says", b0!.mark, "drain")).ok).toBe(true);
    expect(await statusOf("says")).toBe("degraded");
    const first = await service.removeBackend("says", b1!.mark);
    expect(first.message).toMatch(/^Backend 203\.0\.113\.11:80 removed from farm says\. No backend left is up: new connections to 198\.51\.100\.240:80 are not balanced\./);
    expect((await lastLog()).action).toBe("remove backend 203.0.113.11:80");
    expect(await statusOf("says")).toBe("critical");
    const last = await service.removeBackend("says", b0!.mark);
    expect(last.message).toMatch(/^Backend 203\.0\.113\.10:80 removed from farm says\. The farm has no backend left: new connections to 198\.51\.100\.240:80 are not balanced until one is added\./);
    // No backend at all is critical, never running; a stopped farm is just stopped.
    expect(await statusOf("says")).toBe("critical");
    expect((await service.setStatus("says", "stopped")).message).toMatch(/^Farm says stopped: its rules left the kernel/);
    expect(await statusOf("says")).toBe("stopped");
    expect((await service.deleteFarm("says")).ok).toBe(true);
  });

  it("an import is in the apply log, as written to the database and pending", async () => {
    const summary = await importFarms(db, parseFarmFile(JSON.stringify({ farms: [{ ...says, name: "imported", vip: "198.51.100.241" }] })).farms);
    expect(summary.created).toEqual(["imported"]);
    const log = await lastLog();
    expect(log).toMatchObject({ action: "import", target: "database", result: "ok" });
    expect(JSON.parse(log.farms)).toEqual(["imported"]);
    expect(log.summary).toMatch(/^created imported(; \d+ unchanged)?: written to the database, pending until applied$/);
    await db.farm.delete({ where: { name: "imported" } });
  });
});
