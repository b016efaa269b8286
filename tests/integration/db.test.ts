/**
 * The database layer on real SQLite files: natfarm's offline migration runner,
 * the generated Prisma client over the better-sqlite3 adapter, and Prisma's
 * own schema engine (wasm) as the judge of "the migrated database is exactly
 * what schema.prisma describes".
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { disconnectPrisma, getPrisma, openDatabase } from "../../lib/db/client.ts";
import { DatabaseEnvError, projectRoot, resolveDatabaseUrl } from "../../lib/db/env.ts";
import { uniqueViolation } from "../../lib/db/errors.ts";
import { defaultMigrationsDir, migrateDatabase, migrationStatus, MigrationError, readMigrations } from "../../lib/db/migrate.ts";
import { Prisma } from "../../lib/generated/prisma/client.ts";
import { diagnoseHistory, diffDatabaseToSchema, readSchema } from "../../prisma/tools/schema-engine.ts";
import { postgresMigrationsDir } from "../../lib/db/migrate-postgres.ts";
import { derivedPostgresSchema, planTwins, postgresSchemaFile } from "../../prisma/tools/postgres-schema.ts";

const run = promisify(execFile);
const SCHEMA = path.join(projectRoot(), "prisma", "schema.prisma");

let dir: string;
let seq = 0;

function freshDb(): { url: string; file: string } {
  const file = path.join(dir, `db${++seq}.db`);
  return { url: `file:${file}`, file };
}

function history(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM "_prisma_migrations" ORDER BY started_at`).all() as Array<{
      id: string;
      checksum: string;
      finished_at: string | null;
      migration_name: string;
      logs: string | null;
      rolled_back_at: string | null;
      applied_steps_count: number;
    }>;
  } finally {
    db.close();
  }
}

function schemaDump(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return JSON.stringify(db.prepare(`SELECT type, name, sql FROM sqlite_master ORDER BY type, name`).all());
  } finally {
    db.close();
  }
}

/** A migrations directory holding the first `count` committed migrations plus `extra` ones. */
function migrationsDir(extra: Record<string, string> = {}, count = Infinity): string {
  const target = fs.mkdtempSync(path.join(dir, "migrations-"));
  for (const m of readMigrations().slice(0, count)) {
    fs.mkdirSync(path.join(target, m.name));
    fs.copyFileSync(m.file, path.join(target, m.name, "migration.sql"));
  }
  for (const [name, sql] of Object.entries(extra)) {
    fs.mkdirSync(path.join(target, name));
    fs.writeFileSync(path.join(target, name, "migration.sql"), sql);
  }
  return target;
}

async function expectP2002(p: Promise<unknown>, field: string): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a unique violation on ${field}`).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
  expect((err as Prisma.PrismaClientKnownRequestError).code).toBe("P2002");
  expect(uniqueViolation(err)).toContain(field);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-db-test-"));
});

afterEach(async () => {
  await disconnectPrisma();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("migration runner", () => {
  it("migrates an empty database and records every migration in _prisma_migrations", () => {
    const { url, file } = freshDb();
    const migrations = readMigrations();
    expect(migrations.length).toBeGreaterThan(0);

    const result = migrateDatabase(url);
    expect(result.file).toBe(file);
    expect(result.applied).toEqual(migrations.map((m) => m.name));
    expect(result.warnings).toEqual([]);

    const rows = history(file);
    expect(rows.map((r) => r.migration_name)).toEqual(migrations.map((m) => m.name));
    for (const [i, row] of rows.entries()) {
      const sql = fs.readFileSync(migrations[i]!.file, "utf8");
      expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
      expect(row.finished_at).not.toBeNull();
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("is a no-op when nothing is pending", () => {
    const { url, file } = freshDb();
    migrateDatabase(url);
    const before = { schema: schemaDump(file), rows: history(file) };

    const again = migrateDatabase(url);
    expect(again.applied).toEqual([]);
    expect(again.warnings).toEqual([]);
    expect(schemaDump(file)).toBe(before.schema);
    expect(history(file)).toEqual(before.rows);
    expect(migrationStatus(url).pending).toEqual([]);
  });

  it("leaves a database that matches schema.prisma exactly, by Prisma's own schema engine", async () => {
    const { url, file } = freshDb();
    migrateDatabase(url);
    expect(await diffDatabaseToSchema(file, readSchema(SCHEMA))).toBeNull();

    // The judge can fail: a missing unique index is a difference.
    const db = new Database(file);
    db.exec(`DROP INDEX "Backend_mark_key"`);
    db.close();
    expect(await diffDatabaseToSchema(file, readSchema(SCHEMA))).toContain(`CREATE UNIQUE INDEX "Backend_mark_key"`);
  });

  it("keeps a history that Prisma's engine reads as in sync", async () => {
    const { url, file } = freshDb();
    migrateDatabase(url);
    const diagnosis = await diagnoseHistory(file, readSchema(SCHEMA), defaultMigrationsDir());
    expect(diagnosis).toMatchObject({ hasMigrationsTable: true, failedMigrationNames: [], editedMigrationNames: [], history: null });
  });

  it("applies a pending migration to a database created by an older migration set, keeping its data", async () => {
    const { url, file } = freshDb();
    const older = migrationsDir();
    migrateDatabase(url, { migrationsDir: older });

    const prisma = getPrisma(url);
    const farm = await prisma.farm.create({
      data: {
        name: "app",
        vip: "198.51.100.250",
        ports: "443",
        protocol: "tcp",
        mode: "nat",
        backends: { create: [{ position: 0, ip: "203.0.113.10", port: 443, weight: 1, mark: 0x20c }] },
      },
    });
    await disconnectPrisma(url);

    // What Prisma generates when a column changes on SQLite: the parent table is
    // rebuilt and dropped. With foreign keys enforced, that DROP would cascade
    // and delete every backend.
    const newer = path.join(older, "29990101000000_farm_note");
    fs.mkdirSync(newer);
    fs.writeFileSync(
      path.join(newer, "migration.sql"),
      `-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Farm" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "vip" TEXT NOT NULL,
    "ports" TEXT NOT NULL,
    "protocol" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'up',
    "scheduler" TEXT NOT NULL DEFAULT 'weight',
    "applyState" TEXT NOT NULL DEFAULT 'pending',
    "applyError" TEXT,
    "appliedAt" DATETIME,
    "note" TEXT NOT NULL DEFAULT '',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Farm" ("appliedAt", "applyError", "applyState", "createdAt", "id", "mode", "name", "ports", "protocol", "scheduler", "status", "updatedAt", "vip") SELECT "appliedAt", "applyError", "applyState", "createdAt", "id", "mode", "name", "ports", "protocol", "scheduler", "status", "updatedAt", "vip" FROM "Farm";
DROP TABLE "Farm";
ALTER TABLE "new_Farm" RENAME TO "Farm";
CREATE UNIQUE INDEX "Farm_name_key" ON "Farm"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
`,
    );
    expect(migrationStatus(url, { migrationsDir: older }).pending).toEqual(["29990101000000_farm_note"]);

    const result = migrateDatabase(url, { migrationsDir: older });
    expect(result.applied).toEqual(["29990101000000_farm_note"]);
    expect(history(file).map((r) => r.migration_name)).toEqual([...readMigrations().map((m) => m.name), "29990101000000_farm_note"]);

    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare(`SELECT name, note FROM "Farm"`).all()).toEqual([{ name: "app", note: "" }]);
      expect(db.prepare(`SELECT farmId, ip, mark FROM "Backend"`).all()).toEqual([{ farmId: farm.id, ip: "203.0.113.10", mark: 0x20c }]);
      expect(db.pragma("foreign_key_check")).toEqual([]);
    } finally {
      db.close();
    }
    expect(migrateDatabase(url, { migrationsDir: older }).applied).toEqual([]);
  });

  it("rolls a failing migration back completely and retries it once fixed", () => {
    const { url, file } = freshDb();
    const broken = migrationsDir({ "29990101000000_broken": `CREATE TABLE "Extra" ("id" INTEGER PRIMARY KEY);\nINSERT INTO "Nope" VALUES (1);\n` });

    expect(() => migrateDatabase(url, { migrationsDir: broken })).toThrow(MigrationError);
    const db = new Database(file, { readonly: true });
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'Extra'`).get()).toBeUndefined();
    db.close();
    const failed = history(file).filter((r) => r.migration_name === "29990101000000_broken");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ finished_at: null, applied_steps_count: 0 });
    expect(failed[0]!.rolled_back_at).not.toBeNull();
    expect(failed[0]!.logs).toMatch(/Nope/);
    // The migrations before it stay applied.
    expect(migrationStatus(url, { migrationsDir: broken }).pending).toEqual(["29990101000000_broken"]);

    fs.writeFileSync(path.join(broken, "29990101000000_broken", "migration.sql"), `CREATE TABLE "Extra" ("id" INTEGER PRIMARY KEY);\n`);
    expect(migrateDatabase(url, { migrationsDir: broken }).applied).toEqual(["29990101000000_broken"]);
  });

  it("refuses a history left half-applied by another tool, and warns about edited or unknown migrations", () => {
    const { url, file } = freshDb();
    const dirA = migrationsDir();
    migrateDatabase(url, { migrationsDir: dirA });

    const db = new Database(file);
    db.prepare(`UPDATE "_prisma_migrations" SET checksum = 'edited'`).run();
    db.prepare(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('x', 'c', '2026-01-01T00:00:00.000+00:00', '29990101000000_from_the_future', 1)`,
    ).run();
    db.close();
    const warned = migrateDatabase(url, { migrationsDir: dirA });
    expect(warned.applied).toEqual([]);
    expect(warned.warnings.join("\n")).toMatch(/edited after it was applied/);
    expect(warned.warnings.join("\n")).toMatch(/29990101000000_from_the_future/);

    const db2 = new Database(file);
    db2.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ('y', 'c', '29990101000001_crashed')`).run();
    db2.close();
    expect(() => migrateDatabase(url, { migrationsDir: dirA })).toThrow(/started but never finished/);
  });

  it("lets two processes start on the same new database at once", async () => {
    const { url, file } = freshDb();
    const cli = (args: string[]) =>
      run(process.execPath, ["--import", "tsx", path.join(projectRoot(), "scripts", "migrate.ts"), ...args], {
        cwd: projectRoot(),
        env: { ...process.env, NATFARM_DATABASE_URL: url },
      });
    const outputs = await Promise.all([cli([]), cli([])]);
    expect(outputs.map((o) => o.stdout).join("")).toMatch(/applied 1 of|applied \d+ of/);
    expect(history(file).map((r) => r.migration_name)).toEqual(readMigrations().map((m) => m.name));
    const status = await cli(["--status"]);
    expect(status.stdout).not.toMatch(/pending/);
  });
});

describe("datamodel through the generated client", () => {
  const farmData = (name: string) => ({ name, vip: "198.51.100.250", ports: "80,443", protocol: "tcp", mode: "nat" });

  it("openDatabase migrates a new database before handing out the client", async () => {
    const { url, file } = freshDb();
    const prisma = await openDatabase(url);
    expect(await prisma.farm.count()).toBe(0);
    expect(history(file)).toHaveLength(readMigrations().length);
    expect(await openDatabase(url)).toBe(prisma);
  });

  it("stores and reads back every field of Farm, Backend and ApplyLog, with defaults", async () => {
    const { url } = freshDb();
    const prisma = await openDatabase(url);

    const farm = await prisma.farm.create({ data: farmData("web") });
    expect(farm).toMatchObject({
      name: "web",
      vip: "198.51.100.250",
      ports: "80,443",
      protocol: "tcp",
      mode: "nat",
      status: "up",
      scheduler: "weight",
      applyState: "pending",
      applyError: null,
      appliedAt: null,
    });
    expect(farm.id).toBeTypeOf("number");
    expect(farm.createdAt).toBeInstanceOf(Date);
    expect(farm.updatedAt).toBeInstanceOf(Date);

    const appliedAt = new Date("2026-11-26T10:00:00.123Z");
    await new Promise((r) => setTimeout(r, 5));
    const updated = await prisma.farm.update({
      where: { id: farm.id },
      data: { ports: "8000:8100", protocol: "all", mode: "dnat", status: "stopped", scheduler: "weight", applyState: "failed", applyError: "iptables-restore: line 3 failed", appliedAt },
    });
    expect(updated).toMatchObject({ ports: "8000:8100", protocol: "all", mode: "dnat", status: "stopped", applyState: "failed", applyError: "iptables-restore: line 3 failed" });
    expect(updated.appliedAt?.toISOString()).toBe(appliedAt.toISOString());
    expect(updated.updatedAt.getTime()).toBeGreaterThan(farm.updatedAt.getTime());
    expect(updated.createdAt.toISOString()).toBe(farm.createdAt.toISOString());

    const b0 = await prisma.backend.create({ data: { farmId: farm.id, position: 0, ip: "203.0.113.10", port: 8443, weight: 100, mark: 0x200 } });
    const b1 = await prisma.backend.create({ data: { farm: { connect: { name: "web" } }, position: 1, ip: "203.0.113.11", port: null, mark: 0x201, state: "maintenance" } });
    expect(b0).toMatchObject({ farmId: farm.id, position: 0, ip: "203.0.113.10", port: 8443, weight: 100, mark: 0x200, state: "up" });
    expect(b1).toMatchObject({ position: 1, port: null, weight: 1, mark: 0x201, state: "maintenance" });
    expect(b0.createdAt).toBeInstanceOf(Date);
    const b0down = await prisma.backend.update({ where: { mark: 0x200 }, data: { state: "down", weight: 7 } });
    expect(b0down).toMatchObject({ state: "down", weight: 7, mark: 0x200 });

    const withBackends = await prisma.farm.findUniqueOrThrow({ where: { name: "web" }, include: { backends: { orderBy: { position: "asc" } } } });
    expect(withBackends.backends.map((b) => [b.position, b.ip, b.port, b.mark])).toEqual([
      [0, "203.0.113.10", 8443, 0x200],
      [1, "203.0.113.11", null, 0x201],
    ]);
    expect((await prisma.backend.findUniqueOrThrow({ where: { farmId_position: { farmId: farm.id, position: 1 } } })).ip).toBe("203.0.113.11");
    expect((await prisma.backend.findUniqueOrThrow({ where: { farmId_ip_port: { farmId: farm.id, ip: "203.0.113.10", port: 8443 } } })).mark).toBe(0x200);

    const log = await prisma.applyLog.create({
      data: { target: "netns:lab1", action: "apply", farms: JSON.stringify(["web"]), result: "ok", durationMs: 68, summary: "2 chains rewritten" },
    });
    expect(log).toMatchObject({ target: "netns:lab1", action: "apply", farms: '["web"]', result: "ok", error: null, durationMs: 68, summary: "2 chains rewritten" });
    expect(log.at).toBeInstanceOf(Date);
    const failed = await prisma.applyLog.create({
      data: { target: "host", action: "reapply", farms: "[]", result: "failed", error: "timeout", durationMs: 0 },
    });
    expect(failed).toMatchObject({ error: "timeout", summary: null });
    expect((await prisma.applyLog.findMany({ orderBy: { at: "desc" } })).map((l) => l.id)).toHaveLength(2);
  });

  it("rejects duplicate farm names, marks and backend slots", async () => {
    const { url } = freshDb();
    const prisma = await openDatabase(url);
    const a = await prisma.farm.create({ data: farmData("a") });
    const b = await prisma.farm.create({ data: farmData("b") });
    await expectP2002(prisma.farm.create({ data: farmData("a") }), "name");

    await prisma.backend.create({ data: { farmId: a.id, position: 0, ip: "203.0.113.10", port: 80, mark: 0x20c } });
    // Marks are unique across all farms, not per farm.
    await expectP2002(prisma.backend.create({ data: { farmId: b.id, position: 0, ip: "203.0.113.20", port: 80, mark: 0x20c } }), "mark");
    await expectP2002(prisma.backend.create({ data: { farmId: a.id, position: 0, ip: "203.0.113.11", port: 80, mark: 0x20d } }), "position");
    await expectP2002(prisma.backend.create({ data: { farmId: a.id, position: 1, ip: "203.0.113.10", port: 80, mark: 0x20d } }), "ip");
    // The same ip:port in another farm is fine.
    await prisma.backend.create({ data: { farmId: b.id, position: 0, ip: "203.0.113.10", port: 80, mark: 0x20d } });
    expect(await prisma.backend.count()).toBe(2);
  });

  it("deletes a farm's backends with it, and only them; refuses orphans", async () => {
    const { url } = freshDb();
    const prisma = await openDatabase(url);
    const a = await prisma.farm.create({
      data: { ...farmData("a"), backends: { create: [0, 1, 2].map((i) => ({ position: i, ip: `203.0.113.${10 + i}`, mark: 0x200 + i })) } },
    });
    await prisma.farm.create({ data: { ...farmData("b"), backends: { create: [{ position: 0, ip: "203.0.113.20", mark: 0x210 }] } } });
    expect(await prisma.backend.count()).toBe(4);

    await prisma.farm.delete({ where: { id: a.id } });
    expect((await prisma.backend.findMany()).map((x) => x.mark)).toEqual([0x210]);

    const orphan = await prisma.backend.create({ data: { farmId: 9999, position: 0, ip: "203.0.113.30", mark: 0x220 } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(orphan).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    expect((orphan as Prisma.PrismaClientKnownRequestError).code).toBe("P2003");
  });
});

describe("database location", () => {
  it("resolves relative paths against the project root, whatever the current directory", () => {
    const rel = path.relative(projectRoot(), path.join(dir, "sub", "rel.db"));
    const cwd = process.cwd();
    process.chdir(os.tmpdir());
    try {
      const file = path.join(dir, "sub", "rel.db");
      expect(resolveDatabaseUrl(`file:${rel}`)).toEqual({ provider: "sqlite", url: `file:${file}`, file, label: file, dataDir: path.dirname(file) });
      expect(resolveDatabaseUrl(rel).file).toBe(path.join(dir, "sub", "rel.db"));
    } finally {
      process.chdir(cwd);
    }
    expect(fs.existsSync(path.join(dir, "sub"))).toBe(true);
    expect(resolveDatabaseUrl(`file:${path.join(dir, "x.db")}?connection_limit=1`).file).toBe(path.join(dir, "x.db"));
  });

  it("defaults to <project>/data/natfarm.db", () => {
    expect(resolveDatabaseUrl(undefined).file).toBe(path.join(projectRoot(), "data", "natfarm.db"));
    expect(fs.statSync(path.join(projectRoot(), "data")).isDirectory()).toBe(true);
  });

  it("rejects what is neither a SQLite file nor a PostgreSQL URL", () => {
    expect(() => resolveDatabaseUrl("mysql://localhost/natfarm")).toThrow(/must be a SQLite file \(file:<path>\) or a PostgreSQL URL/);
    // The password never reaches the message.
    expect(() => resolveDatabaseUrl("mysql://root:hunter2@localhost/natfarm")).toThrow(/^(?![\s\S]*hunter2)/);
    expect(() => resolveDatabaseUrl("file::memory:")).toThrow(DatabaseEnvError);
    expect(() => resolveDatabaseUrl(":memory:")).toThrow(DatabaseEnvError);
  });

  it("takes postgresql:// and postgres:// URLs: host, port (5432 by default), database; the label has no password", () => {
    const loc = resolveDatabaseUrl("postgresql://natfarm:s3cret@db.example:6543/farms?sslmode=disable");
    expect(loc).toMatchObject({ provider: "postgresql", host: "db.example", port: 6543, database: "farms", label: "postgresql://db.example:6543/farms", dataDir: path.join(projectRoot(), "data") });
    expect(loc.url).toBe("postgresql://natfarm:s3cret@db.example:6543/farms?sslmode=disable");
    expect(loc.file).toBeUndefined();
    expect(resolveDatabaseUrl("postgres://u@[2001:db8::5]/n")).toMatchObject({ host: "2001:db8::5", port: 5432, label: "postgresql://[2001:db8::5]:5432/n" });
    expect(resolveDatabaseUrl("postgresql:///natfarm?host=/run/postgresql")).toMatchObject({ host: "/run/postgresql", database: "natfarm" });
  });

  it("refuses a PostgreSQL URL without a host, a database or a valid port, naming what is missing", () => {
    expect(() => resolveDatabaseUrl("postgresql:///natfarm")).toThrow(/no PostgreSQL host/);
    expect(() => resolveDatabaseUrl("postgresql://db.example")).toThrow(/no database name/);
    expect(() => resolveDatabaseUrl("postgresql://db.example/")).toThrow(/no database name/);
    expect(() => resolveDatabaseUrl("postgresql://db.example:99999/x")).toThrow(DatabaseEnvError);
    expect(() => resolveDatabaseUrl("postgresql://db.example/a/b")).toThrow(/bad database name/);
  });

  it("the synchronous SQLite runner refuses a PostgreSQL URL and points to migrate()", () => {
    expect(() => migrateDatabase("postgresql://u:p@127.0.0.1:1/x")).toThrow(/is PostgreSQL: migrate it with migrate\(\)/);
  });
});

describe("the PostgreSQL twin of the schema and the migrations", () => {
  // Contents are proven on a real server in db-postgres.test.ts; this half needs none.
  it("prisma/postgresql/schema.prisma is prisma/schema.prisma derived (run npx tsx prisma/tools/postgres-schema.ts)", () => {
    expect(fs.readFileSync(postgresSchemaFile(), "utf8")).toBe(derivedPostgresSchema());
    expect(derivedPostgresSchema()).toMatch(/datasource db \{\s*provider = "postgresql"\s*\}/);
    expect(derivedPostgresSchema()).toContain('output   = "../../lib/generated/prisma-pg"');
  });

  it("every SQLite migration has its PostgreSQL twin of the same name, and no twin is left without one", () => {
    const sqlite = readMigrations().map((m) => m.name);
    const twins = readMigrations(postgresMigrationsDir()).map((m) => m.name);
    expect(sqlite.filter((n) => !twins.includes(n)), "SQLite migrations without a PostgreSQL twin: run npx tsx prisma/tools/postgres-schema.ts").toEqual([]);
    expect(twins.filter((n) => !sqlite.includes(n)), "PostgreSQL migrations without a SQLite migration").toEqual([]);
    expect(fs.readFileSync(path.join(postgresMigrationsDir(), "migration_lock.toml"), "utf8")).toContain('provider = "postgresql"');
  });

  it("the check fails for a SQLite migration added without its twin", async () => {
    const sqliteDir = path.join(dir, "sqlite-migrations");
    fs.cpSync(defaultMigrationsDir(), sqliteDir, { recursive: true });
    fs.mkdirSync(path.join(sqliteDir, "29990101000000_farm_note"));
    fs.writeFileSync(path.join(sqliteDir, "29990101000000_farm_note", "migration.sql"), 'ALTER TABLE "Farm" ADD COLUMN "note" TEXT;\n');
    const names = async () => {
      const plan = await planTwins(sqliteDir, postgresMigrationsDir(), { namesOnly: true });
      return { missing: plan.missing.map((m) => m.name), orphans: plan.orphans };
    };
    expect(await names()).toEqual({ missing: ["29990101000000_farm_note"], orphans: [] });
  });
});
