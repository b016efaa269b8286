import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import type { PrismaClient } from "../../lib/generated/prisma/client.ts";
import { AgentUnavailableError, type KernelApplyOptions, type KernelApplyResult, type KernelPort } from "../../lib/kernel/index.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { toFormState } from "../../lib/service/errors.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { kernelReach } from "../../lib/service/kernel-reach.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The service against a fake kernel port (no root, no netfilter): it asks
 * the port for every kernel operation, and an agent that is down changes
 * nothing in the database (a clear refusal), while a change saved just
 * before the agent went away is pending and says so.
 */
const TARGET: Target = { kind: "netns", name: "nfport-fake" };
const SOCKET = "/run/natfarm/agent.sock";
const down = (cause = "no socket: the agent is not running", delivered = false) => new AgentUnavailableError(SOCKET, cause, delivered);

type Op = keyof Omit<KernelPort, "via" | "lab">;
/** A kernel port that records calls; `fail[op]` makes that operation throw. */
function fakeKernel(fail: Partial<Record<Op | "lab", () => Error>> = {}) {
  const calls: { op: string; args: unknown[] }[] = [];
  const call = <T>(op: Op | "lab", args: unknown[], value: T): Promise<T> => {
    calls.push({ op, args });
    const f = fail[op];
    return f ? Promise.reject(f()) : Promise.resolve(value);
  };
  const applied: KernelApplyResult = {
    changed: true,
    mode: "scoped",
    payload: "",
    stats: { chainsCreated: 0, chainsRewritten: 1, chainsDeleted: 0, rulesAdded: 2, rulesDeleted: 0 },
    tables: ["mangle", "nat"],
    farmsChanged: [],
    warnings: [],
    durationMs: 1,
  };
  const lab = new Proxy({}, { get: (_t, name: string) => (...args: unknown[]) => call("lab", [name, ...args], null) }) as KernelPort["lab"];
  const port: KernelPort = {
    via: "agent",
    applyFarms: (input: unknown, opts: KernelApplyOptions) => call("applyFarms", [input, opts], applied),
    driftReport: (...args) => call("driftReport", args, { inSync: true, farms: [], stray: [], payload: "" } as never),
    driftOfFarm: (...args) => call("driftOfFarm", args, { inSync: true } as never),
    driftOfFarms: (...args) => call("driftOfFarms", args, new Map()),
    readTables: (...args) => call("readTables", args, {} as never),
    readNatfarmTables: (...args) => call("readNatfarmTables", args, {} as never),
    // Every mark holds 3 open connections and 4 closing (TIME_WAIT) entries: conntrack -D deletes all 7.
    connectionStats: (...args) => call("connectionStats", args, { at: "", byMark: { get: () => ({ established: 2, pending: 1, closing: 4, total: 7 }) } as never }),
    cutConnections: (...args) => call("cutConnections", args, 7),
    resetCounters: (...args) => call("resetCounters", args, {} as never),
    checkLocalVips: (...args) => call("checkLocalVips", args, []),
    ping: (...args) => call("ping", args, undefined),
    lab,
  };
  return { port, calls, ops: () => calls.map((c) => c.op) };
}

const web = {
  name: "web",
  vip: "198.51.100.80",
  ports: "80",
  protocol: "tcp" as const,
  mode: "dnat" as const,
  backends: [{ ip: "203.0.113.10", port: 80 }],
};

let dir: string;
let tdb: TestDatabase;
let url: string;
let db: PrismaClient;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-port-"));
  tdb = await createTestDatabase("port");
  url = tdb.url;
  db = await openDatabase(url);
});

beforeEach(async () => {
  await db.farm.deleteMany();
  await db.applyLog.deleteMany();
});

afterAll(async () => {
  await disconnectPrisma(url);
  await tdb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What the database holds, to compare before and after a refused change. */
async function snapshot() {
  const farms = await db.farm.findMany({ include: { backends: { orderBy: { position: "asc" } } }, orderBy: { name: "asc" } });
  return { farms, log: await db.applyLog.count() };
}

/** The farm, created and applied through a working fake port. */
async function seeded() {
  const r = await createFarmService({ db, target: TARGET, kernel: fakeKernel().port }).createFarm(web);
  expect(r).toMatchObject({ ok: true, outcome: "applied" });
  return snapshot();
}

describe("the service asks the kernel port", () => {
  it("checks the VIP, then applies only the changed farm, through the port it was given", async () => {
    const k = fakeKernel();
    const service = createFarmService({ db, target: TARGET, kernel: k.port });
    expect(await service.createFarm(web)).toMatchObject({ ok: true, outcome: "applied" });
    expect(k.ops()).toEqual(["checkLocalVips", "applyFarms"]);
    expect(k.calls[1]!.args[1]).toMatchObject({ target: TARGET, only: ["web"] });
    const mark = (await service.getFarm("web"))!.backends[0]!.mark;
    // Only open connections count as cut, not the closing entries conntrack deleted with them.
    expect(await service.setMaintenance("web", mark, "cut")).toMatchObject({ ok: true, message: expect.stringMatching(/ 3 open connections cut\./) });
    expect(k.ops().slice(2)).toEqual(["checkLocalVips", "applyFarms", "connectionStats", "cutConnections"]);
  });
});

describe("the agent down: a clear refusal, nothing changed", () => {
  const refusal = /^The natfarm agent is not running; nothing was changed\./;

  it("a new farm is validated first, then refused with nothing written", async () => {
    const k = fakeKernel({ checkLocalVips: () => down(), applyFarms: () => down() });
    const service = createFarmService({ db, target: TARGET, kernel: k.port });
    const bad = await service.createFarm({ ...web, vip: "300.1.1.1" });
    expect(bad).toMatchObject({ ok: false, reason: "invalid", errors: { vip: [expect.any(String)] } });
    const r = await service.createFarm(web);
    expect(r).toMatchObject({ ok: false, reason: "unavailable", saved: false, message: expect.stringMatching(refusal) });
    expect(await snapshot()).toEqual({ farms: [], log: 0 });
    expect(k.ops()).toEqual(["checkLocalVips"]);
    // The form keeps what was typed and shows the refusal.
    expect(toFormState(r, { values: { name: "web" } })).toMatchObject({ status: "invalid", agentUnavailable: true, values: { name: "web" }, errors: { _form: [expect.stringMatching(refusal)] } });
  });

  it("changes to an existing farm, re-apply, delete and apply all leave every row and the apply log as they were", async () => {
    const before = await seeded();
    const k = fakeKernel({ checkLocalVips: () => down(), applyFarms: () => down(), lab: () => down() });
    const service = createFarmService({ db, target: TARGET, kernel: k.port });
    const mark = before.farms[0]!.backends[0]!.mark;
    for (const r of [
      await service.setMode("web", "nat"),
      await service.setStatus("web", "stopped"),
      await service.addBackend("web", { ip: "203.0.113.11", port: 80 }),
      await service.setMaintenance("web", mark, "drain"),
      await service.setBackendHealth("web", mark, "down"),
      await service.reapply("web"),
      await service.deleteFarm("web"),
      await service.applyAll(),
    ]) {
      expect(r).toMatchObject({ ok: false, reason: "unavailable", saved: false, message: expect.stringMatching(refusal) });
    }
    expect(await snapshot()).toEqual(before);
  });

  it("the agent gone between the check and the apply: the farm is saved as pending, and the result says so", async () => {
    const k = fakeKernel({ applyFarms: () => down("connection closed") });
    const r = await createFarmService({ db, target: TARGET, kernel: k.port }).createFarm(web);
    expect(r).toMatchObject({ ok: false, reason: "unavailable", saved: true, farm: "web", message: expect.stringMatching(/^Farm web saved but not applied: the natfarm agent is not running\. The change is pending/) });
    expect((await db.farm.findUniqueOrThrow({ where: { name: "web" } })).applyState).toBe("pending");
    expect(await db.applyLog.count()).toBe(0);
    expect(toFormState(r)).toMatchObject({ status: "failed", agentUnavailable: true });
  });

  it("the agent lost during an apply it received: the outcome is unknown, the farm is failed and the attempt logged", async () => {
    const before = await seeded();
    const k = fakeKernel({ applyFarms: () => down("the agent closed the connection during apply (it may have been restarted)", true) });
    const r = await createFarmService({ db, target: TARGET, kernel: k.port }).setMode("web", "nat");
    expect(r).toMatchObject({ ok: false, reason: "apply-failed", message: expect.stringMatching(/went away during the change/) });
    const row = await db.farm.findUniqueOrThrow({ where: { name: "web" } });
    expect(row).toMatchObject({ mode: "nat", applyState: "failed" });
    expect(await db.applyLog.count()).toBe(before.log + 1);
  });
});

describe("kernelReach: the banner's check", () => {
  it("up, down, and nothing to check", async () => {
    expect(await kernelReach(fakeKernel().port, TARGET)).toEqual({ state: "up" });
    expect(await kernelReach(fakeKernel({ ping: () => down() }).port, TARGET)).toMatchObject({ state: "down", message: expect.stringMatching(/not available/) });
    expect(await kernelReach(fakeKernel().port, null)).toEqual({ state: "unused" });
    const hung: KernelPort = { ...fakeKernel().port, ping: () => new Promise(() => {}) };
    expect(await kernelReach(hung, TARGET, 50)).toMatchObject({ state: "down" });
  });
});
