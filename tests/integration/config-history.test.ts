import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { countingKernel } from "../helpers/counting-kernel.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { historyKeep, SNAPSHOT_EVERY, withAuthor, type Author } from "../../lib/service/config-history.ts";
import { importFarms } from "../../lib/service/farm-io.ts";
import { createFarmService, type FarmService } from "../../lib/service/farm-service.ts";
import { createNetns, deleteNetns, iptablesSave } from "../helpers/netns.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The configuration history against a real database and real netfilter in
 * a namespace this file creates: a revision per change of the desired
 * state, in the change's transaction, with its author; none for a health
 * verdict; revert and restore as new revisions applied in one kernel
 * transaction; a bad backup changes nothing.
 */
const dbs: TestDatabase[] = [];
let ns: { name: string; target: Target };
let db: PrismaClient;
let service: FarmService;
const applies: (readonly string[] | undefined)[] = [];
const alice: Author = { name: "alice", via: "console" };
const bob: Author = { name: "bob (token 7)", via: "api" };

async function kernelText(): Promise<string> {
  return ((await iptablesSave(ns.target, "mangle")) + (await iptablesSave(ns.target, "nat")))
    .split("\n")
    .filter((l) => !l.startsWith("#") && !/^:.* \[\d+:\d+\]$/.test(l))
    .join("\n");
}

const web = {
  name: "web",
  vip: "198.51.100.30",
  ports: "80",
  protocol: "tcp" as const,
  mode: "dnat" as const,
  backends: [
    { ip: "203.0.113.10", port: 80, weight: 1 },
    { ip: "203.0.113.11", port: 80, weight: 1 },
  ],
};

beforeAll(async () => {
  const t = await createTestDatabase("history");
  dbs.push(t);
  db = await openDatabase(t.url);
  ns = await createNetns("nfhist");
  service = createFarmService({ db, target: ns.target, kernel: countingKernel(applies) });
});

afterAll(async () => {
  await disconnectPrisma();
  if (ns) await deleteNetns(ns.name);
  for (const t of dbs) await t.drop();
});

describe("a revision per change", () => {
  let afterCreate = 0;
  let kernelAfterCreate = "";

  it("records who made each change, how, and what it changed", async () => {
    expect(await withAuthor(alice, () => service.createFarm(web))).toMatchObject({ ok: true });
    const [created] = await service.revisions();
    expect(created).toMatchObject({ author: "alice", via: "console", summary: "farm web: create", farms: ["web"] });
    afterCreate = created!.id;
    kernelAfterCreate = await kernelText();

    const mark = (await service.getFarm("web"))!.backends[0]!.mark;
    expect(await withAuthor(bob, () => service.updateBackend("web", mark, { weight: 3 }))).toMatchObject({ ok: true });
    const [edit] = await service.revisions();
    expect(edit).toMatchObject({ author: "bob (token 7)", via: "api", summary: "farm web: edit backend 203.0.113.10:80: weight 1 → 3" });
    const full = await service.revision(edit!.id);
    expect(full!.changes[0]!.before!.backends[0]!.weight).toBe(1);
    expect(full!.changes[0]!.after!.backends[0]!.weight).toBe(3);

    // The readable diff against the previous revision: the farm's words, its JSON and its rules.
    const cmp = await service.compare(afterCreate, edit!.id);
    if (!("diffs" in cmp)) throw new Error(cmp.message);
    expect(cmp.diffs).toHaveLength(1);
    expect(cmp.diffs[0]!.words).toBe("farm web: backend 203.0.113.10:80 weight 1 → 3");
    expect(cmp.diffs[0]!.json.filter((l) => l.op !== " ").map((l) => `${l.op}${l.line.trim()}`)).toEqual(["-\"weight\": 1,", "+\"weight\": 3,"]);
    expect(cmp.diffs[0]!.rules.some((l) => l.op === "+" && l.line.includes("--probability"))).toBe(true);
    expect(await kernelText()).not.toBe(kernelAfterCreate);
  });

  it("a health verdict is state, not configuration: no revision", async () => {
    const before = (await service.revisions())[0]!.id;
    const mark = (await service.getFarm("web"))!.backends[1]!.mark;
    expect(await service.setBackendHealth("web", mark, "down")).toMatchObject({ ok: true });
    expect((await service.revisions())[0]!.id).toBe(before);
    // ... and the configuration shows the backend in service.
    expect((await service.currentConfig())[0]!.backends[1]!.state).toBeUndefined();
  });

  it("a bulk change and a CLI import make one revision each", async () => {
    const r = await withAuthor(alice, () => service.bulk(["web"], { kind: "drain", ip: "203.0.113.11", port: null }));
    expect(r.result).toMatchObject({ ok: true });
    expect((await service.revisions())[0]).toMatchObject({ summary: "bulk drain backend 203.0.113.11 (1 farm): web", author: "alice" });

    await withAuthor({ name: "cli (root)", via: "cli" }, () =>
      importFarms(db, [{ ...web, name: "api", vip: "198.51.100.31", backends: [{ ip: "203.0.113.12", port: 80, weight: 1, state: "up", priority: 1 }] }] as never),
    );
    expect((await service.revisions())[0]).toMatchObject({ summary: "import: 1 created (api)", author: "cli (root)", via: "cli", farms: ["api"] });
    expect(await service.applyAll()).toMatchObject({ ok: true });
  });

  it("revert is a new revision, applied in one kernel transaction, and restores the earlier rules", async () => {
    const head = (await service.revisions())[0]!.id;
    const first = (await service.getFarm("web"))!.backends[0]!.mark;
    expect(await service.setBackendHealth("web", first, "down")).toMatchObject({ ok: true });
    applies.length = 0;
    const r = await withAuthor(alice, () => service.revert(afterCreate));
    expect(r).toMatchObject({ ok: true, outcome: "applied" });
    expect(r.message).toMatch(/^Reverted to revision \d+: 1 farm changed, 1 farm deleted\./);
    expect(applies).toHaveLength(1);
    expect([...applies[0]!].sort()).toEqual(["api", "web"]);
    const [rev] = await service.revisions();
    expect(rev).toMatchObject({ summary: `revert to revision ${afterCreate}`, author: "alice" });
    expect(rev!.id).toBeGreaterThan(head);
    // The health checker's verdict survives the revert; with both backends up the rules are the earlier ones.
    expect((await service.getFarm("web"))!.backends.map((b) => b.state)).toEqual(["down", "up"]);
    await service.setBackendHealth("web", first, "up");
    expect(await kernelText()).toBe(kernelAfterCreate);
    // Reverting to where it is already changes nothing and writes no revision.
    expect(await service.revert(rev!.id)).toMatchObject({ ok: true, outcome: "unchanged" });
    expect((await service.revisions())[0]!.id).toBe(rev!.id);
  });

  it("an unknown revision is refused with nothing changed", async () => {
    expect(await service.revert(999_999)).toMatchObject({ ok: false, reason: "not-found" });
    expect(await service.compare(999_999, null)).toMatchObject({ ok: false, reason: "not-found" });
  });
});

describe("backup and restore", () => {
  it("a bad file changes nothing and says why", async () => {
    const head = (await service.revisions())[0]!.id;
    const before = await kernelText();
    const bad = JSON.stringify({ farms: [{ ...web, backends: [{ ip: "203.0.113.10", port: 0 }] }] });
    const r = await service.restore(bad, "bad.json");
    expect(r).toMatchObject({ ok: false, reason: "invalid" });
    expect(r.message).toMatch(/port/);
    expect(await service.restore("{not json", "bad.json")).toMatchObject({ ok: false, reason: "invalid", message: expect.stringMatching(/not valid JSON/) });
    expect(await service.restore(JSON.stringify({ farms: [web, { ...web, name: "twin" }] }), "bad.json")).toMatchObject({ ok: false, message: expect.stringMatching(/overlap/i) });
    expect((await service.revisions())[0]!.id).toBe(head);
    expect(await kernelText()).toBe(before);
  });

  it("a backup restored on a fresh database gives the same farms", async () => {
    const backup = JSON.stringify(await service.backup());
    const t = await createTestDatabase("history-fresh");
    dbs.push(t);
    const fresh = await openDatabase(t.url);
    const other = createFarmService({ db: fresh, target: null });
    const r = await withAuthor(alice, () => other.restore(backup, "natfarm-backup.json"));
    expect(r).toMatchObject({ ok: true, outcome: "pending" });
    expect(await other.backup()).toEqual(JSON.parse(backup));
    expect((await other.revisions())[0]).toMatchObject({ summary: "restore natfarm-backup.json", author: "alice" });
  });
});

describe("storage stays bounded", () => {
  it("keeps the newest revisions and can rebuild every kept one", async () => {
    const t = await createTestDatabase("history-prune");
    dbs.push(t);
    const pdb = await openDatabase(t.url);
    const s = createFarmService({ db: pdb, target: null });
    const keep = process.env.NATFARM_HISTORY_KEEP;
    process.env.NATFARM_HISTORY_KEEP = "10";
    try {
      expect(historyKeep()).toBe(10);
      await s.createFarm(web);
      const mark = (await s.getFarm("web"))!.backends[0]!.mark;
      for (let i = 0; i < SNAPSHOT_EVERY + 15; i++) await s.updateBackend("web", mark, { weight: (i % 90) + 2 });
      const ids = (await s.revisions({ limit: 1000 })).map((r) => r.id);
      expect(ids.length).toBeLessThanOrEqual(10 + SNAPSHOT_EVERY);
      expect(ids.length).toBeGreaterThanOrEqual(10);
      expect(Math.min(...ids)).toBeGreaterThan(1);
      // Every kept revision rebuilds to the weight it wrote.
      for (const id of ids.slice(0, 12)) {
        const rev = (await s.revision(id))!;
        expect((await s.configAt(id))[0]!.backends[0]!.weight).toBe(rev.changes[0]!.after!.backends[0]!.weight);
      }
    } finally {
      if (keep === undefined) delete process.env.NATFARM_HISTORY_KEEP;
      else process.env.NATFARM_HISTORY_KEEP = keep;
    }
  });

  it("two authors at once: each revision carries its own (the service's serialized queue keeps the context)", async () => {
    const t = await createTestDatabase("history-authors");
    dbs.push(t);
    const cdb = await openDatabase(t.url);
    const s = createFarmService({ db: cdb, target: null });
    await s.createFarm(web);
    const marks = (await s.getFarm("web"))!.backends.map((b) => b.mark);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        withAuthor({ name: `user${i}`, via: "console" }, () => s.updateBackend("web", marks[i % 2]!, { weight: 10 + i })),
      ),
    );
    const revs = (await s.revisions()).filter((r) => r.summary.includes("edit backend"));
    expect(revs).toHaveLength(6);
    for (const r of revs) {
      const i = Number(r.author.slice(4));
      expect(r.summary).toContain(`weight`);
      expect(r.summary).toContain(`→ ${10 + i}`);
    }
  });
});
