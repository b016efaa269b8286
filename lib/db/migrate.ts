import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { databaseEnv, projectRoot, resolveDatabaseUrl, type DatabaseLocation, type SqliteLocation } from "./env.ts";
import { migratePostgres, postgresMigrationStatus } from "./migrate-postgres.ts";

/**
 * natfarm's own migration runner: applies prisma/migrations/<name>/migration.sql
 * in name order with better-sqlite3, fully offline (Prisma's CLI needs a native
 * schema engine that air-gapped appliances cannot download).
 *
 * Applied migrations are recorded in `_prisma_migrations` with Prisma's layout
 * and checksums, so `prisma migrate status/deploy` (where a real engine exists)
 * see the same history.
 *
 * Each migration runs in its own IMMEDIATE transaction with foreign keys off:
 *  - SQLite DDL is transactional, so a failing migration leaves the database
 *    exactly as it was (Prisma's native deploy would leave it half-applied);
 *  - `PRAGMA foreign_keys=OFF` is a no-op inside a transaction, so the
 *    "RedefineTables" scripts Prisma generates would otherwise DROP the parent
 *    table with ON DELETE CASCADE live and silently delete every backend.
 *    Integrity is checked with `PRAGMA foreign_key_check` before commit instead;
 *  - IMMEDIATE serialises concurrent runners (console and CLI starting together):
 *    the second one re-reads the history inside its transaction and skips.
 * Migration scripts must therefore not contain BEGIN/COMMIT themselves.
 */

export interface Migration {
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  /** defaults to <project>/prisma/migrations (SQLite) or <project>/prisma/postgresql/migrations */
  migrationsDir?: string;
  log?: (message: string) => void;
}

export interface MigrateResult {
  /** absolute path of the SQLite file, or the PostgreSQL database as postgresql://host:port/name */
  file: string;
  /** migrations applied by this call, in order */
  applied: string[];
  /** migrations present in the directory */
  total: number;
  /** non-fatal findings: edited applied migrations, history unknown to this checkout */
  warnings: string[];
}

export class MigrationError extends Error {
  constructor(
    message: string,
    readonly migration?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MigrationError";
  }
}

const MIGRATIONS_TABLE = "_prisma_migrations";

// Byte-for-byte the table Prisma's schema engine creates on SQLite.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "${MIGRATIONS_TABLE}" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

interface HistoryRow {
  id: string;
  checksum: string;
  finished_at: unknown;
  migration_name: string;
  logs: string | null;
  rolled_back_at: unknown;
}

export function defaultMigrationsDir(): string {
  return path.join(projectRoot(), "prisma", "migrations");
}

/** Prisma's checksum: SHA-256 of the script, hex. */
export function migrationChecksum(sql: string): string {
  return createHash("sha256").update(sql, "utf8").digest("hex");
}

function checksumMatches(sql: string, recorded: string): boolean {
  // A checkout with CRLF line endings must not look like an edited migration.
  return migrationChecksum(sql) === recorded || migrationChecksum(sql.replace(/\r\n/g, "\n")) === recorded;
}

/** The migrations on disk, in the order they apply (directory name order, as Prisma does). */
export function readMigrations(dir: string = defaultMigrationsDir()): Migration[] {
  // The turbopackIgnore comments keep the console's bundler from tracing the whole project for these reads.
  if (!fs.existsSync(/*turbopackIgnore: true*/ dir)) throw new MigrationError(`migrations directory not found: ${dir}`);
  return fs
    .readdirSync(/*turbopackIgnore: true*/ dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(/*turbopackIgnore: true*/ path.join(dir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort()
    .map((name) => {
      const file = path.join(dir, name, "migration.sql");
      const sql = fs.readFileSync(/*turbopackIgnore: true*/ file, "utf8");
      return { name, file, sql, checksum: migrationChecksum(sql) };
    });
}

// The text form Prisma's engine writes through a driver adapter; Prisma reads
// it back as well as the Unix milliseconds its native engine writes.
const now = (): string => new Date().toISOString().replace(/Z$/, "+00:00");

function sqliteOnly(location: DatabaseLocation): SqliteLocation {
  if (location.provider !== "sqlite") {
    // Synchronous callers cannot wait on a server: they must take the async path.
    throw new MigrationError(`${location.label} is PostgreSQL: migrate it with migrate() / getMigrationStatus(), which wait on the server`);
  }
  return location;
}

function history(db: Database.Database): HistoryRow[] {
  return db
    .prepare(`SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at FROM "${MIGRATIONS_TABLE}" ORDER BY started_at, migration_name`)
    .all() as HistoryRow[];
}

function openDatabase(file: string): Database.Database {
  // A generous busy timeout: another process may hold the write lock while it migrates.
  const db = new Database(file, { timeout: 30_000 });
  // Console and CLI use the database at the same time: readers must not block the writer.
  db.pragma("journal_mode = WAL");
  return db;
}

/**
 * Applies the pending migrations to the database at `url` (default: the
 * configured NATFARM_DATABASE_URL), creating the file when missing. Safe to
 * call at every start-up: with nothing pending it only reads the history.
 */
export function migrateDatabase(url?: string, options: MigrateOptions = {}): MigrateResult {
  const location = sqliteOnly(url === undefined ? databaseEnv() : resolveDatabaseUrl(url));
  const migrations = readMigrations(options.migrationsDir);
  const log = options.log ?? (() => {});
  const warnings: string[] = [];
  const applied: string[] = [];

  const db = openDatabase(location.file);
  try {
    db.exec(CREATE_MIGRATIONS_TABLE);

    const unfinished = history(db).filter((r) => r.finished_at == null && r.rolled_back_at == null);
    if (unfinished.length > 0) {
      // Left by a crashed native `prisma migrate deploy` (our runner never leaves one):
      // the schema may be half-changed, only a person can tell (Prisma's P3009).
      throw new MigrationError(
        `migration ${unfinished.map((r) => r.migration_name).join(", ")} started but never finished in ${location.file}: ` +
          `inspect the database, then mark it rolled back or applied (prisma migrate resolve)`,
        unfinished[0]!.migration_name,
      );
    }

    db.pragma("foreign_keys = OFF");
    try {
      for (const m of migrations) {
        db.exec("BEGIN IMMEDIATE");
        let committed = false;
        try {
          const done = db
            .prepare(`SELECT checksum FROM "${MIGRATIONS_TABLE}" WHERE migration_name = ? AND finished_at IS NOT NULL AND rolled_back_at IS NULL`)
            .get(m.name) as { checksum: string } | undefined;
          if (done) {
            if (!checksumMatches(m.sql, done.checksum)) {
              warnings.push(`migration ${m.name} was edited after it was applied (checksum differs); it is not re-applied`);
            }
          } else {
            const started = now();
            db.exec(m.sql);
            const violations = db.pragma("foreign_key_check") as unknown[];
            if (violations.length > 0) {
              throw new Error(`leaves ${violations.length} foreign key violation(s), e.g. ${JSON.stringify(violations[0])}`);
            }
            db.prepare(
              `INSERT INTO "${MIGRATIONS_TABLE}" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
               VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)`,
            ).run(randomUUID(), m.checksum, now(), m.name, started);
            applied.push(m.name);
            log(`applied migration ${m.name}`);
          }
          db.exec("COMMIT");
          committed = true;
        } catch (err) {
          if (!committed && db.inTransaction) db.exec("ROLLBACK");
          const message = err instanceof Error ? err.message : String(err);
          // Keep a trace for operators, marked rolled back so that Prisma and
          // this runner both retry the migration next time.
          try {
            db.prepare(
              `INSERT INTO "${MIGRATIONS_TABLE}" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
               VALUES (?, ?, NULL, ?, ?, ?, ?, 0)`,
            ).run(randomUUID(), m.checksum, m.name, message, now(), now());
          } catch {
            // the failure itself matters more than its trace
          }
          throw new MigrationError(`migration ${m.name} failed and was rolled back: ${message}`, m.name, { cause: err });
        }
      }
    } finally {
      db.pragma("foreign_keys = ON");
    }

    const known = new Set(migrations.map((m) => m.name));
    const foreign = [...new Set(history(db).filter((r) => r.finished_at != null && r.rolled_back_at == null && !known.has(r.migration_name)).map((r) => r.migration_name))];
    if (foreign.length > 0) {
      warnings.push(`database has migrations this checkout does not know (newer natfarm?): ${foreign.join(", ")}`);
    }
  } finally {
    db.close();
  }

  for (const w of warnings) log(`warning: ${w}`);
  return { file: location.file, applied, total: migrations.length, warnings };
}

export interface MigrationStatus {
  /** as MigrateResult's */
  file: string;
  applied: string[];
  pending: string[];
  /** recorded in the database, absent from the migrations directory */
  unknown: string[];
}

/** Read-only view of the history; does not create the database. */
export function migrationStatus(url?: string, options: Pick<MigrateOptions, "migrationsDir"> = {}): MigrationStatus {
  const location = sqliteOnly(url === undefined ? databaseEnv() : resolveDatabaseUrl(url));
  const migrations = readMigrations(options.migrationsDir);
  let rows: HistoryRow[] = [];
  if (fs.existsSync(location.file)) {
    const db = new Database(location.file, { readonly: true, timeout: 30_000 });
    try {
      const hasTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(MIGRATIONS_TABLE);
      if (hasTable) rows = history(db);
    } finally {
      db.close();
    }
  }
  const done = new Set(rows.filter((r) => r.finished_at != null && r.rolled_back_at == null).map((r) => r.migration_name));
  const known = new Set(migrations.map((m) => m.name));
  return {
    file: location.file,
    applied: migrations.filter((m) => done.has(m.name)).map((m) => m.name),
    pending: migrations.filter((m) => !done.has(m.name)).map((m) => m.name),
    unknown: [...done].filter((n) => !known.has(n)),
  };
}

/**
 * Applies the pending migrations of the database at `url` (default: the
 * configured NATFARM_DATABASE_URL), SQLite or PostgreSQL: what start-up code
 * calls. PostgreSQL takes its migrations from prisma/postgresql/migrations.
 */
export async function migrate(url?: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const location = url === undefined ? databaseEnv() : resolveDatabaseUrl(url);
  if (location.provider === "postgresql") return migratePostgres(location, options);
  return migrateDatabase(location.url, options);
}

/** migrationStatus for either provider. */
export async function getMigrationStatus(url?: string, options: Pick<MigrateOptions, "migrationsDir"> = {}): Promise<MigrationStatus> {
  const location = url === undefined ? databaseEnv() : resolveDatabaseUrl(url);
  if (location.provider === "postgresql") return postgresMigrationStatus(location, options);
  return migrationStatus(location.url, options);
}
