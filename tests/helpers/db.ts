import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";

/**
 * The database a test file runs on: SQLite (a file in a fresh temporary
 * directory) or, in vitest's "postgresql" project (vitest.config.ts), a fresh
 * PostgreSQL database on the server NATFARM_TEST_POSTGRES_URL names (an
 * admin URL with CREATEDB; .ci/run makes one), created for the file and
 * dropped after it. The same test file thus runs on both.
 */
export type TestDatabaseKind = "sqlite" | "postgresql";

export function testDatabaseKind(): TestDatabaseKind {
  return process.env.NATFARM_TEST_DATABASE === "postgresql" ? "postgresql" : "sqlite";
}

/** The admin URL, or an error that says what to set: the PostgreSQL half never skips itself once it runs. */
export function postgresAdminUrl(): string {
  const url = process.env.NATFARM_TEST_POSTGRES_URL?.trim();
  if (!url) {
    throw new Error(
      "the PostgreSQL half of the database tests runs (CI=true or NATFARM_TEST_DATABASE=postgresql) but NATFARM_TEST_POSTGRES_URL is not set: " +
        "point it at a server and a role with CREATEDB, e.g. postgresql://natfarm_test:PASSWORD@127.0.0.1:5432/postgres (.ci/run makes one)",
    );
  }
  return url;
}

export interface TestDatabase {
  kind: TestDatabaseKind;
  /** what NATFARM_DATABASE_URL takes */
  url: string;
  /** the SQLite file (SQLite only) */
  file?: string;
  /** the PostgreSQL database's name (PostgreSQL only) */
  name?: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const url = postgresAdminUrl();
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on("error", () => {});
  try {
    await c.connect();
  } catch (e) {
    const u = new URL(url);
    throw new Error(`cannot reach the test PostgreSQL server at ${u.hostname}:${u.port || 5432} (NATFARM_TEST_POSTGRES_URL): ${(e as Error).message}`);
  }
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** A fresh, empty PostgreSQL database; its URL has the admin URL's credentials. */
export async function createPostgresDatabase(label: string): Promise<TestDatabase> {
  const name = `natfarm_test_${label.replace(/[^a-z0-9]/gi, "").toLowerCase().slice(0, 20)}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  const u = new URL(postgresAdminUrl());
  u.pathname = `/${name}`;
  return {
    kind: "postgresql",
    url: u.toString(),
    name,
    // FORCE: a client a failed test left open must not keep the database alive.
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

export function createSqliteDatabase(label: string): TestDatabase {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `natfarm-${label}-`));
  const file = path.join(dir, `${label}.db`);
  return { kind: "sqlite", url: `file:${file}`, file, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The database of this test file's run, empty (not migrated). */
export async function createTestDatabase(label: string, kind: TestDatabaseKind = testDatabaseKind()): Promise<TestDatabase> {
  return kind === "postgresql" ? createPostgresDatabase(label) : createSqliteDatabase(label);
}
