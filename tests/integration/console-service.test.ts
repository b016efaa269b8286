import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { createFarmService, type FarmService } from "../../lib/console/farm-service-core.ts";
import { exportFarms, importFarms } from "../../lib/console/farm-io.ts";
import { GUIDE_EXAMPLE } from "../../lib/console/guide-example.ts";
import { driftOfFarm } from "../../lib/console/drift.ts";
import { rowToResolved } from "../../lib/console/farm-model.ts";
import { parseFarmFile } from "../../lib/farms/file.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { createNetns, deleteNetns, iptables, iptablesSave } from "../helpers/netns.ts";

/**
 * The console's farm lifecycle against a real SQLite database (through
 * Prisma, migrated by the project's runner) and real netfilter in a bare
 * namespace this file creates and always deletes.
 */
let dir: string;
let url: string;
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
  url = `file:${path.join(dir, "console.db")}`;
  faultFile = path.join(dir, "fault");
  db = await openDatabase(url);
  ns = await createNetns("nfcon");
  service = createFarmService({ db, target: ns.target, faultFile });
});

afterAll(async () => {
  if (ns) await deleteNetns(ns.name);
  await disconnectPrisma(url);
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
    expect(last).toMatchObject({ result: "failed", action: "add backend" });
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
});
