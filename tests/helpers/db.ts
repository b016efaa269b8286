import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";

/**
 * The database a test file runs on: SQLite (a file in a fresh temporary
 * directory) or, in vitest's "postgresql" project (vitest.config.ts), a fresh
 * PostgreSQL database on the server NATFARM_TEST_POSTGRES_URL names (an
 * admin URL of a role with CREATEDB and pg_signal_backend, which the forced
 * drop needs against autovacuum; .ci/run makes one), created for the file and
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
        "point it at a server and a role with CREATEDB in pg_signal_backend, e.g. postgresql://natfarm_test:PASSWORD@127.0.0.1:5432/postgres (.ci/run makes one)",
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
  /**
   * The URL for processes inside a lab's namespaces, which cannot reach the
   * machine's 127.0.0.1 (nothing links them to the root namespace): the
   * server's Unix socket when the admin URL names a local server; `url`
   * itself for SQLite and for a remote server.
   */
  netnsUrl(): Promise<string>;
  /** Runs one statement (the tests' SQLite SQL: on PostgreSQL mixed-case names are quoted and ? numbered), synchronously so expect.poll can use it. */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): T[];
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
  const url = u.toString();
  return {
    kind: "postgresql",
    url,
    name,
    netnsUrl: () => postgresSocketUrl(url),
    query: (sql, ...params) => postgresQuery(url, sql, params),
    // FORCE: a client a failed test left open must not keep the database alive.
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

export function createSqliteDatabase(label: string): TestDatabase {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `natfarm-${label}-`));
  const file = path.join(dir, `${label}.db`);
  return {
    kind: "sqlite",
    url: `file:${file}`,
    file,
    netnsUrl: async () => `file:${file}`,
    // A connection per query: the file may not exist yet, and a held one would keep a deleted file open.
    query<T>(sql: string, ...params: unknown[]): T[] {
      const db = new Database(file, { fileMustExist: true });
      try {
        const st = db.prepare(sql);
        return (st.reader ? st.all(...params) : (st.run(...params), [])) as T[];
      } finally {
        db.close();
      }
    },
    drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * `url` through the server's Unix socket, when it names this machine
 * (127.0.0.1, ::1, localhost): the socket `.s.PGSQL.<port>` is looked for in
 * NATFARM_TEST_POSTGRES_SOCKET_DIR, then Debian's and PostgreSQL's default
 * directories (the server's own setting is for superusers only). The role
 * must be allowed to log in with its password over the socket (pg_hba
 * `local ... scram-sha-256`: .ci/run adds that line for its role).
 */
export async function postgresSocketUrl(url: string): Promise<string> {
  const u = new URL(url);
  if (u.searchParams.get("host") || !["127.0.0.1", "localhost", "[::1]", "::1"].includes(u.hostname)) return url;
  const port = u.port || "5432";
  const dirs = [process.env.NATFARM_TEST_POSTGRES_SOCKET_DIR?.trim(), "/var/run/postgresql", "/run/postgresql", "/tmp"].filter((d): d is string => Boolean(d));
  const dir = dirs.find((d) => fs.existsSync(path.join(d, `.s.PGSQL.${port}`)));
  if (!dir) throw new Error(`no Unix socket of the test PostgreSQL server (port ${port}) in ${dirs.join(", ")}: namespaces cannot reach it over 127.0.0.1 (set NATFARM_TEST_POSTGRES_SOCKET_DIR)`);
  u.hostname = "localhost";
  u.searchParams.set("host", dir);
  return u.toString();
}

// Runs one query with pg in a child: query() is synchronous (tests poll it in expect.poll).
const PG_QUERY = `import pg from "pg";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { url, text, params } = JSON.parse(input);
// COUNT(*) and other bigints as numbers, as SQLite gives them (the tests' counts are small).
pg.types.setTypeParser(20, (v) => Number(v));
const c = new pg.Client({ connectionString: url });
await c.connect();
try { process.stdout.write(JSON.stringify((await c.query(text, params)).rows)); } finally { await c.end(); }`;

const ROOT = path.resolve(import.meta.dirname, "..", "..");

/** The tests' SQLite SQL on PostgreSQL: mixed-case names (Farm, applyState) quoted, ? placeholders numbered. */
export function postgresQuery<T>(url: string, sql: string, params: unknown[]): T[] {
  let n = 0;
  const text = sql
    .split(/('(?:[^']|'')*'|"[^"]*")/)
    .map((part, i) =>
      i % 2 ? part : part.replace(/\?/g, () => `$${++n}`).replace(/\b[A-Za-z_][A-Za-z0-9_]*\b/g, (w) => (/[a-z]/.test(w) && /[A-Z]/.test(w) ? `"${w}"` : w)),
    )
    .join("");
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", PG_QUERY], { cwd: ROOT, input: JSON.stringify({ url, text, params }), encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`query on PostgreSQL failed (${text}): ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as T[];
}

/** The database of this test file's run, empty (not migrated). */
export async function createTestDatabase(label: string, kind: TestDatabaseKind = testDatabaseKind()): Promise<TestDatabase> {
  return kind === "postgresql" ? createPostgresDatabase(label) : createSqliteDatabase(label);
}
