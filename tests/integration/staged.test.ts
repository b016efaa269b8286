import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { countingKernel } from "../helpers/counting-kernel.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { withAuthor } from "../../lib/service/config-history.ts";
import { withStagingSession } from "../../lib/service/staging.ts";
import { createUser } from "../../lib/auth/users.ts";
import { login } from "../../lib/auth/sessions.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { createNetns, deleteNetns, iptables, iptablesSave } from "../helpers/netns.ts";
import { directKernel, withEngine } from "../../lib/kernel/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { farmChain } from "../../lib/nftables/layout.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * Staged changes against a real database and real netfilter in a namespace
 * this file creates: edits reach the database only, Apply changes commits
 * them in one kernel transaction, Discard leaves the kernel alone, an
 * unconfirmed savepoint rolls back by itself (and a confirmed one stays),
 * a health verdict on a farm without pending changes still applies at once.
 */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
let testDb: TestDatabase | undefined;
let ns: { name: string; target: Target };
let db: PrismaClient;
let service: FarmService;
const applies: (readonly string[] | undefined)[] = [];
const alice = { name: "alice", via: "console" as const };

async function kernelText(): Promise<string> {
  return ((await iptablesSave(ns.target, "mangle")) + (await iptablesSave(ns.target, "nat")))
    .split("\n")
    .filter((l) => !l.startsWith("#") && !/^:.* \[\d+:\d+\]$/.test(l))
    .join("\n");
}

const farm = (name: string, vip: string) => ({ name, vip, ports: "80", protocol: "tcp" as const, mode: "dnat" as const, backends: [{ ip: "203.0.113.10", port: 80, weight: 1 }, { ip: "203.0.113.11", port: 80, weight: 1 }] });
const marks = async (name: string) => (await service.getFarm(name))!.backends.map((b) => b.mark);

beforeAll(async () => {
  testDb = await createTestDatabase("staged");
  db = await openDatabase(testDb.url);
  ns = await createNetns("nfstage");
  service = createFarmService({ db, target: ns.target, kernel: countingKernel(applies) });
  for (const [n, v] of [["web", "198.51.100.50"], ["api", "198.51.100.51"]] as const) expect(await service.createFarm(farm(n, v))).toMatchObject({ ok: true });
});

afterAll(async () => {
  await disconnectPrisma();
  if (ns) await deleteNetns(ns.name);
  await testDb?.drop();
});

describe.sequential("staged changes", () => {
  let applied = "";

  it("three edits change the database only; the pending view counts them and shows the rule diff", async () => {
    expect(await service.applyStaged()).toMatchObject({ ok: false, message: expect.stringMatching(/not staged/) });
    expect(await service.setStaging(true)).toMatchObject({ ok: true });
    applied = await kernelText();
    applies.length = 0;
    const [w0, w1] = await marks("web");
    await withAuthor(alice, async () => {
      const r = await service.updateBackend("web", w0!, { weight: 3 });
      expect(r).toMatchObject({ ok: true, outcome: "pending", message: expect.stringMatching(/Staged: pending until Apply changes/) });
      await service.setMaintenance("web", w1!, "drain");
      await service.setMode("api", "nat");
    });
    expect(applies).toEqual([]);
    expect(await kernelText()).toBe(applied);
    const view = await service.staging();
    expect(view.revisions).toHaveLength(3);
    expect(view.farms).toEqual(["api", "web"]);
    expect(view.diffs.find((d) => d.farm === "web")!.rules.some((l) => l.op === "+" && l.line.includes("--probability 1.00000000000"))).toBe(true);
    expect(view.diffs.find((d) => d.farm === "api")!.rules.some((l) => l.op === "+" && l.line.includes("SNAT"))).toBe(true);
    expect(await service.setStaging(false)).toMatchObject({ ok: false, message: expect.stringMatching(/Apply changes or Discard/) });
    expect(await service.reapply("web")).toMatchObject({ ok: false, message: expect.stringMatching(/staged changes/) });
  });

  it("Apply changes commits them all in one kernel transaction", async () => {
    const r = await service.applyStaged();
    expect(r).toMatchObject({ ok: true, outcome: "applied", message: expect.stringMatching(/^Applied 3 pending changes \(2 farms\) in one transaction\./) });
    expect(applies).toHaveLength(1);
    expect([...applies[0]!].sort()).toEqual(["api", "web"]);
    expect(await kernelText()).not.toBe(applied);
    expect(await kernelText()).toContain("SNAT --to-source 198.51.100.51");
    expect((await service.staging()).revisions).toEqual([]);
    applied = await kernelText();
  });

  it("Discard brings the database back to what the kernel holds and leaves the kernel alone", async () => {
    const [w0] = await marks("web");
    await service.updateBackend("web", w0!, { weight: 9 });
    await service.deleteFarm("api");
    expect(await service.getFarm("api")).toBeNull();
    expect(await kernelText()).toBe(applied);
    applies.length = 0;
    const r = await service.discardStaged();
    expect(r).toMatchObject({ ok: true, message: expect.stringMatching(/discarded.*the kernel was not touched/) });
    expect(applies).toEqual([]);
    expect(await kernelText()).toBe(applied);
    expect((await service.getFarm("api"))?.mode).toBe("nat");
    expect((await service.getFarm("web"))!.backends[0]!.weight).toBe(3);
    expect((await service.staging()).farms).toEqual([]);
    expect((await service.revisions())[0]).toMatchObject({ summary: "discard staged changes" });
  });

  it("the pending diff is against the kernel now: a rule deleted by hand is drift, and a line Apply changes puts back", async () => {
    const [, w1] = await marks("web");
    // Its second backend, drained since the first test, back in service.
    await service.setMaintenance("web", w1!, "off");
    const first = await service.staging({ live: true });
    expect(first.live).toMatchObject({ error: null, omitted: [] });
    const web = first.live!.farms.find((f) => f.farm === "web")!;
    expect(web.drifted).toBe(false);
    expect(web.add.some((l) => l.startsWith("mangle ") && l.includes("MARK"))).toBe(true);
    expect(web.remove.some((l) => l.includes("no new connections for"))).toBe(true);
    // Someone deletes the farm's DNAT rule for its first backend, outside natfarm.
    const dnat = (await iptables(ns.target, ["-t", "nat", "-S"])).split("\n").find((l) => l.includes("FARM_web_") && l.includes("--to-destination 203.0.113.10:80"))!;
    expect(dnat).toBeTruthy();
    await iptables(ns.target, ["-t", "nat", "-D", ...dnat.replace(/^-A /, "").split(" ")]);
    service.forgetStagedLive();
    const after = await service.staging({ live: true });
    const drifted = after.live!.farms.find((f) => f.farm === "web")!;
    expect(drifted.drifted).toBe(true);
    expect(drifted.add).toContain(`nat ${dnat.replace(/^-A /, "")}`);
    // The rendered diff, from the configuration last applied, cannot know it.
    expect(after.diffs.find((d) => d.farm === "web")!.rules.some((l) => l.op === "+" && l.line.includes("203.0.113.10:80"))).toBe(false);
    applies.length = 0;
    expect(await service.applyStaged()).toMatchObject({ ok: true });
    expect(applies).toHaveLength(1);
    expect(await iptables(ns.target, ["-t", "nat", "-S"])).toContain(dnat);
    expect((await service.staging({ live: true })).farms).toEqual([]);
  });

  it("a health verdict on a farm without pending changes is applied at once", async () => {
    const [, a1] = await marks("api");
    applies.length = 0;
    expect(await service.setBackendHealth("api", a1!, "down")).toMatchObject({ ok: true, outcome: "applied" });
    expect(applies).toHaveLength(1);
    await service.setBackendHealth("api", a1!, "up");
    applied = await kernelText();
  });

  it("an unconfirmed savepoint rolls back by itself; a confirmed one stays", async () => {
    await service.setMode("web", "nat");
    const r = await service.applyStaged({ savepoint: true });
    expect(r).toMatchObject({ ok: true, message: expect.stringMatching(/Confirm within 60 s/) });
    const changed = await kernelText();
    expect(changed).not.toBe(applied);
    expect(await service.checkSavepoint()).toBeNull();
    // Its deadline passes: the checker's loop rolls back, once.
    const rolled = await service.checkSavepoint(new Date(Date.now() + 61_000));
    expect(rolled).toMatchObject({ ok: true, message: expect.stringMatching(/^Not confirmed in time: the previous configuration is back: 1 farm changed\./) });
    expect(await service.checkSavepoint(new Date(Date.now() + 61_000))).toBeNull();
    expect(await kernelText()).toBe(applied);
    expect((await service.getFarm("web"))!.mode).toBe("dnat");
    expect((await service.revisions())[0]).toMatchObject({ author: "system (savepoint)", summary: expect.stringMatching(/^savepoint: not confirmed in time/) });
    expect((await service.staging()).lastOutcome).toMatch(/^rolled back/);
    expect(await service.confirmSavepoint("alice")).toMatchObject({ ok: false, message: expect.stringMatching(/rolled back/) });

    await service.setMode("web", "nat");
    await service.applyStaged({ savepoint: true });
    expect(await service.confirmSavepoint("alice")).toMatchObject({ ok: true });
    expect(await service.checkSavepoint(new Date(Date.now() + 61_000))).toBeNull();
    expect(await kernelText()).toBe(changed);
    expect(await service.setStaging(false)).toMatchObject({ ok: true });
  });

  it("natfarm staged on|show|apply --savepoint|confirm|discard|off: the same service calls, audited, bad input exit 2", async () => {
    const env = { ...process.env, NATFARM_DATABASE_URL: testDb!.url, NATFARM_TARGET: "none" };
    const cli = (...args: string[]) => execa(process.execPath, [BIN, "staged", ...args, ...(["show", "apply", "discard", "confirm"].includes(args[0]!) ? ["--target", `netns:${ns.name}`] : [])], { reject: false, env });
    expect((await cli("on")).stdout).toMatch(/^Staged changes are on/);
    const before = await kernelText();
    expect(await service.setMode("web", "dnat")).toMatchObject({ outcome: "pending" });
    const show = await cli("show");
    expect(show.exitCode, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^1 pending change in 1 farm:$/m);
    expect(show.stdout).toContain("# rules of farm web against the kernel now");
    expect(show.stdout).toMatch(/^- nat \S+ .*SNAT --to-source 198\.51\.100\.50/m);
    expect(await kernelText()).toBe(before);
    const bad = await cli("apply", "--savepoint=yes");
    expect(bad.exitCode).not.toBe(0);
    const applied = await cli("apply", "--savepoint");
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/^Applied 1 pending change \(farm web\) in one transaction\..*Confirm within 60 s/);
    expect(await kernelText()).not.toContain("SNAT --to-source 198.51.100.50");
    expect((await cli("confirm")).exitCode).toBe(0);
    const again = await cli("confirm");
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/No apply is waiting/);
    expect((await cli("discard")).stdout).toMatch(/^Nothing was pending/);
    expect((await cli("off")).stdout).toMatch(/^Staged changes are off/);
    expect((await cli("apply")).exitCode).toBe(2);
    const audited = await db.auditEntry.findMany({ where: { action: { startsWith: "staged " } }, orderBy: { id: "asc" } });
    expect(audited.map((a) => `${a.action}:${a.result}`)).toEqual(["staged on:ok", "staged apply (savepoint):ok", "staged confirm:ok", "staged confirm:invalid", "staged discard:ok", "staged off:ok", "staged apply:invalid"]);
    expect(audited[0]!.actor).toMatch(/^cli \(/);
  });

  it("per login session: one session's edits are staged while others' apply at once; an edit at once to its farm is refused naming who staged what; the flag ends with the session", async () => {
    const sid = async (name: string) => {
      await createUser(db, name, "operator", `${name}-password-1`);
      const s = await login(db, { name, password: `${name}-password-1`, address: "127.0.0.1" });
      if (!s.ok) throw new Error(s.message);
      return s.user.sessionId;
    };
    const [carol, dave] = [await sid("carol"), await sid("dave")];
    const as = <T,>(name: string, session: string, run: () => Promise<T>) => withAuthor({ name, via: "console" }, () => withStagingSession(session, run));
    expect((await service.staging()).tracking).toBe(false);
    expect(await service.setSessionStaging(carol, true)).toMatchObject({ ok: true, message: expect.stringMatching(/this login only/) });
    const before = await kernelText();
    applies.length = 0;
    const [w0] = await marks("web");
    const [a0] = await marks("api");
    expect(await as("carol", carol, () => service.updateBackend("web", w0!, { weight: 7 }))).toMatchObject({ ok: true, outcome: "pending" });
    expect(applies).toEqual([]);
    expect(await kernelText()).toBe(before);
    // Dave stages nothing: his edit of another farm is applied at once, and is not pending.
    expect(await as("dave", dave, () => service.updateBackend("api", a0!, { weight: 4 }))).toMatchObject({ ok: true, outcome: "applied" });
    expect(applies).toHaveLength(1);
    const view = await service.staging({ session: dave });
    expect(view).toMatchObject({ enabled: false, session: false, tracking: true, farms: ["web"] });
    expect(view.revisions.map((r) => r.author)).toEqual(["carol"]);
    expect((await service.staging({ session: carol })).session).toBe(true);
    // His edit of carol's farm would apply her change too: refused, nothing written, naming her change.
    const refusedEdit = await as("dave", dave, () => service.updateBackend("web", w0!, { weight: 2 }));
    expect(refusedEdit).toMatchObject({ ok: false, message: expect.stringMatching(/^Farm web has staged changes not applied yet \(#\d+ farm web: edit backend 203\.0\.113\.10:80: weight 3 → 7 by carol\)/) });
    expect((await service.getFarm("web"))!.backends[0]!.weight).toBe(7);
    expect((await as("dave", dave, () => service.bulk(["web", "api"], { kind: "stop" }))).result).toMatchObject({ ok: false, message: expect.stringMatching(/Farm web has staged changes/) });
    expect(await as("dave", dave, () => service.setStatus("web", "stopped"))).toMatchObject({ ok: false });
    // The API and the CLI have no console session: the installation setting (off), so the same refusal.
    expect(await service.setMode("web", "nat")).toMatchObject({ ok: false, message: expect.stringMatching(/by carol/) });
    // A health verdict on her farm waits for the apply.
    applies.length = 0;
    const [, w1] = await marks("web");
    expect(await service.setBackendHealth("web", w1!, "down")).toMatchObject({ ok: true, outcome: "pending" });
    await service.setBackendHealth("web", w1!, "up");
    expect(applies).toEqual([]);
    // Her session ends: the flag goes with it, her change stays pending (shared state) until someone applies or discards it.
    await db.session.delete({ where: { id: carol } });
    expect(await service.staging()).toMatchObject({ tracking: true, farms: ["web"] });
    expect(await as("dave", dave, () => service.applyStaged())).toMatchObject({ ok: true, message: expect.stringMatching(/^Applied 1 pending change \(farm web\)/) });
    expect(applies).toHaveLength(1);
    expect(await service.staging()).toMatchObject({ tracking: false, farms: [] });
    expect((await db.stagedState.findUnique({ where: { id: 1 } }))!.applied).toBeNull();
    expect(await as("dave", dave, () => service.updateBackend("web", w0!, { weight: 2 }))).toMatchObject({ ok: true, outcome: "applied" });
    expect(await service.setSessionStaging(carol, true)).toMatchObject({ ok: false, message: expect.stringMatching(/session has ended/) });
  });
});

describe.sequential("staged changes on the nftables engine", () => {
  let db2: TestDatabase | undefined;
  let ns2: { name: string; target: Target } | undefined;
  let svc: FarmService;
  const nft = async (args: string[]) => (await runPrivileged("nft", args, { target: ns2!.target })).stdout;

  beforeAll(async () => {
    db2 = await createTestDatabase("stagednft");
    ns2 = await createNetns("nfstagn");
    svc = createFarmService({ db: await openDatabase(db2.url), target: ns2.target, kernel: withEngine(directKernel, "nftables") });
    expect(await svc.createFarm(farm("nweb", "198.51.100.60"))).toMatchObject({ ok: true, outcome: "applied" });
  });

  afterAll(async () => {
    if (db2) await disconnectPrisma(db2.url);
    if (ns2) await deleteNetns(ns2.name);
    await db2?.drop();
  });

  it("the live diff in nft lines, and a farm chain flushed by hand is drift", async () => {
    await svc.setStaging(true);
    const [m0] = (await svc.getFarm("nweb"))!.backends.map((b) => b.mark);
    expect(await svc.updateBackend("nweb", m0!, { weight: 3 })).toMatchObject({ outcome: "pending" });
    const first = (await svc.staging({ live: true })).live!;
    expect(first).toMatchObject({ error: null, farms: [{ farm: "nweb", drifted: false }] });
    expect(first.farms[0]!.add.length).toBeGreaterThan(0);
    expect([...first.farms[0]!.add, ...first.farms[0]!.remove].every((l) => /^(chain|element) /.test(l))).toBe(true);
    await nft(["flush", "chain", "ip", "natfarm", farmChain("nweb")]);
    svc.forgetStagedLive();
    // A page does not wait for the kernel: without a reading at hand it says so and shows the rendered diff.
    const early = await svc.staging({ live: true, waitMs: 0 });
    expect(early.liveReading, JSON.stringify(early).slice(0, 600)).toBe(true);
    expect(early).toMatchObject({ farms: ["nweb"] });
    expect(early.live).toBeUndefined();
    const after = (await svc.staging({ live: true })).live!.farms[0]!;
    expect(after.drifted).toBe(true);
    expect(after.remove.filter((l) => l.startsWith("chain "))).toEqual([]);
    expect(after.add.filter((l) => l.startsWith("chain ")).length).toBeGreaterThan(first.farms[0]!.add.filter((l) => l.startsWith("chain ")).length);
    expect(await svc.applyStaged()).toMatchObject({ ok: true, outcome: "applied" });
    expect((await svc.staging({ live: true })).farms).toEqual([]);
  });
});
