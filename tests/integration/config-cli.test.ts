import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../lib/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * `natfarm config` against a real SQLite database (NATFARM_TARGET=none:
 * changes are written and stay pending, no kernel): every import is a
 * revision by "cli (<user>)", show and diff print the farm and rule diff,
 * revert is a new revision, backup and restore round-trip, and bad input
 * (a bad file, an unknown revision, a malformed number) exits 2 with
 * nothing changed.
 */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
let dir: string;
/** SQLite, or PostgreSQL in vitest's postgresql project */
let tdb: TestDatabase;
let env: Record<string, string>;
const natfarm = (args: string[], input?: string) => execa(process.execPath, [BIN, ...args], { reject: false, env, input });

const farm = (weight: number) => ({ farms: [{ name: "app", vip: "198.51.100.60", ports: "443", protocol: "tcp", mode: "dnat", backends: [{ ip: "203.0.113.10", port: 443 }, { ip: "203.0.113.11", port: 443, weight }] }] });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-config-cli-"));
  tdb = await createTestDatabase("configcli");
  env = { NATFARM_DATABASE_URL: tdb.url, NATFARM_TARGET: "none" };
  await migrate(env.NATFARM_DATABASE_URL!);
});

afterAll(async () => {
  await tdb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("natfarm config", () => {
  it("history, show, diff, revert, backup and restore", async () => {
    for (const w of [1, 5]) {
      fs.writeFileSync(path.join(dir, `f${w}.json`), JSON.stringify(farm(w)));
      expect((await natfarm(["import", "-f", path.join(dir, `f${w}.json`)])).exitCode).toBe(0);
    }
    const h = await natfarm(["config", "history"]);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toMatch(/^\s+2 .* cli \(\S+\) \(cli\)\s+import: 1 updated \(app\)$/m);
    expect(h.stdout).toMatch(/^\s+1 .* import: 1 created \(app\)$/m);

    const show = await natfarm(["config", "show", "2"]);
    expect(show.stdout).toContain("# farm app: backend 203.0.113.11:443 weight 1 → 5");
    expect(show.stdout).toMatch(/^\+ -A NATFARM-F-app .*--probability 0\.16666666651/m);
    expect((await natfarm(["config", "diff", "1", "--json"])).stdout).toContain('"words":"farm app: backend 203.0.113.11:443 weight 1 → 5"');

    const revert = await natfarm(["config", "revert", "1"]);
    expect(revert.exitCode, revert.stderr).toBe(0);
    expect(revert.stdout).toMatch(/^Reverted to revision 1: 1 farm changed\. Applying is disabled/);
    expect((await natfarm(["config", "history", "--json"])).stdout).toContain('"summary":"revert to revision 1"');
    expect(JSON.parse((await natfarm(["config", "export", "3"])).stdout).farms[0].backends[1].weight).toBe(1);

    const backup = (await natfarm(["config", "backup"])).stdout;
    const r = await natfarm(["config", "restore", "-f", "-"], backup);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/It was the current configuration already: nothing changed/);
  });

  it("bad input exits 2 and changes nothing", async () => {
    const before = (await natfarm(["config", "history", "--json"])).stdout;
    const bad = await natfarm(["config", "restore", "-f", "-"], JSON.stringify({ farms: [{ name: "x", vip: "198.51.100.61", ports: "0", protocol: "tcp", mode: "nat", backends: [] }] }));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^natfarm: Nothing changed: .*ports/);
    expect((await natfarm(["config", "restore", "-f", "-"], "{nope")).exitCode).toBe(2);
    const gone = await natfarm(["config", "revert", "999"]);
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr).toMatch(/no revision 999/);
    expect((await natfarm(["config", "show", "abc"])).exitCode).toBe(2);
    expect((await natfarm(["config", "diff", "0"])).exitCode).toBe(2);
    expect((await natfarm(["config", "history", "--json"])).stdout).toBe(before);
  });
});
