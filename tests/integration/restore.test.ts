import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { driftReport, flushFarms } from "../../lib/applier/index.ts";
import { MIXED_FARMS } from "../helpers/farms.ts";
import { createNetns, deleteAllNetns } from "../helpers/netns.ts";
import { createTestDatabase } from "../helpers/db.ts";

/** `natfarm import` into a fresh database, then `natfarm restore` after the kernel lost everything (a reboot). */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-restore-"));
// SQLite, or PostgreSQL in vitest's postgresql project.
const tdb = await createTestDatabase("restore");
const env = { NATFARM_DATABASE_URL: tdb.url };
const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false, env });
afterAll(async () => {
  await deleteAllNetns();
  await tdb.drop();
});

describe("natfarm restore", () => {
  it("re-applies the database's farms after the kernel lost them", async () => {
    const { name, target } = await createNetns("rst");
    const file = path.join(dir, "farms.json");
    writeFileSync(file, JSON.stringify({ farms: MIXED_FARMS }));
    const imported = await natfarm("import", "-f", file);
    // Only warnings (MIXED_FARMS has a protocol-all farm on every port), no error.
    expect(imported.stderr.split("\n").filter((l) => l && !/^(natfarm: )?warning: /.test(l))).toEqual([]);
    expect(imported.stdout).toMatch(/created: web, any, sctp-svc, off|created: .*web/);

    const first = await natfarm("restore", "--target", `netns:${name}`);
    expect(first.exitCode, first.stderr).toBe(0);
    expect((await driftReport(MIXED_FARMS, { target })).inSync).toBe(true);

    await flushFarms({ target });
    expect((await driftReport(MIXED_FARMS, { target })).inSync).toBe(false);
    const again = await natfarm("restore", "--target", `netns:${name}`);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await driftReport(MIXED_FARMS, { target })).inSync).toBe(true);
  });

  it("exits 1 with the kernel's words when the apply fails", async () => {
    // A namespace that does not exist: the target is well formed, the apply itself fails.
    const r = await natfarm("restore", "--target", "netns:nfrstgone0");
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/nfrstgone0/);
  });

  it("refuses a bad target with exit 2", async () => {
    const r = await natfarm("restore", "--target", "nowhere");
    expect(r.exitCode).toBe(2);
  });
});
