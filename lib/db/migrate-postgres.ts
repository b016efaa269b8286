import { randomUUID } from "node:crypto";
import path from "node:path";
import pg from "pg";
import { postgresEndpoint, projectRoot, type PostgresLocation } from "./env.ts";
import { DatabaseUnreachableError, postgresConnectError } from "./errors.ts";
import { migrationChecksum, MigrationError, readMigrations, type MigrateOptions, type MigrateResult, type MigrationStatus } from "./migrate.ts";

/**
 * natfarm's migration runner for PostgreSQL: prisma/postgresql/migrations
 * (the twins of the SQLite migrations, prisma/tools/postgres-schema.ts),
 * applied in name order over `pg`, offline as for SQLite.
 *
 * The nodes of a cluster share the database and may all start at once: the
 * runner holds a session advisory lock for the whole run, the very key
 * Prisma's own `migrate deploy` takes (72707369), so natfarm nodes and a
 * native Prisma CLI exclude each other; whoever comes second re-reads the
 * history under the lock and finds nothing left to do.
 *
 * Each migration runs in one transaction with its history row: PostgreSQL's
 * DDL is transactional, so a failing migration leaves the schema as it was,
 * and a trace marked rolled back is written after.
 */

const ADVISORY_KEY = 72707369;
const TABLE = "_prisma_migrations";

// Byte-for-byte the table Prisma's schema engine creates on PostgreSQL.
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "${TABLE}" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface Row {
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  rolled_back_at: Date | null;
}

export function postgresMigrationsDir(): string {
  return path.join(projectRoot(), "prisma", "postgresql", "migrations");
}

/** A connected client, or the operator-facing error naming the server. */
export async function connectPostgres(location: PostgresLocation, connectTimeoutMs = 10_000): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: location.url, connectionTimeoutMillis: connectTimeoutMs, application_name: "natfarm-migrate" });
  // An idle client whose server goes away emits 'error': without a listener that would end the process.
  client.on("error", () => {});
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    throw postgresConnectError(err, postgresEndpoint(location)) ?? new DatabaseUnreachableError(`cannot reach PostgreSQL at ${postgresEndpoint(location)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function history(client: pg.Client): Promise<Row[]> {
  return (await client.query<Row>(`SELECT checksum, finished_at, migration_name, rolled_back_at FROM "${TABLE}" ORDER BY started_at, migration_name`)).rows;
}

async function tableExists(client: pg.Client): Promise<boolean> {
  return (await client.query(`SELECT to_regclass($1) AS t`, [`"${TABLE}"`])).rows[0]?.t != null;
}

export async function migratePostgres(location: PostgresLocation, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = readMigrations(options.migrationsDir ?? postgresMigrationsDir());
  const log = options.log ?? (() => {});
  const warnings: string[] = [];
  const applied: string[] = [];
  const client = await connectPostgres(location);
  try {
    await client.query(`SELECT pg_advisory_lock($1)`, [ADVISORY_KEY]);
    try {
      await client.query(CREATE_TABLE);
      const unfinished = (await history(client)).filter((r) => r.finished_at == null && r.rolled_back_at == null);
      if (unfinished.length > 0) {
        throw new MigrationError(
          `migration ${unfinished.map((r) => r.migration_name).join(", ")} started but never finished in ${location.label}: ` +
            `inspect the database, then mark it rolled back or applied (prisma migrate resolve)`,
          unfinished[0]!.migration_name,
        );
      }
      const done = new Map((await history(client)).filter((r) => r.finished_at != null && r.rolled_back_at == null).map((r) => [r.migration_name, r.checksum]));
      for (const m of migrations) {
        const recorded = done.get(m.name);
        if (recorded !== undefined) {
          if (recorded !== m.checksum && recorded !== migrationChecksum(m.sql.replace(/\r\n/g, "\n"))) {
            warnings.push(`migration ${m.name} was edited after it was applied (checksum differs); it is not re-applied`);
          }
          continue;
        }
        const started = new Date();
        try {
          await client.query("BEGIN");
          // The simple query protocol (no parameters) runs a multi-statement script.
          await client.query(m.sql);
          await client.query(
            `INSERT INTO "${TABLE}" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count) VALUES ($1, $2, now(), $3, NULL, NULL, $4, 1)`,
            [randomUUID(), m.checksum, m.name, started],
          );
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK").catch(() => {});
          const message = err instanceof Error ? err.message : String(err);
          await client
            .query(
              `INSERT INTO "${TABLE}" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count) VALUES ($1, $2, NULL, $3, $4, now(), $5, 0)`,
              [randomUUID(), m.checksum, m.name, message, started],
            )
            .catch(() => {});
          throw new MigrationError(`migration ${m.name} failed and was rolled back: ${message}`, m.name, { cause: err });
        }
        applied.push(m.name);
        log(`applied migration ${m.name}`);
      }
      const known = new Set(migrations.map((m) => m.name));
      const foreign = [...done.keys()].filter((n) => !known.has(n));
      if (foreign.length) warnings.push(`database has migrations this checkout does not know (newer natfarm?): ${foreign.join(", ")}`);
    } finally {
      await client.query(`SELECT pg_advisory_unlock($1)`, [ADVISORY_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
  for (const w of warnings) log(`warning: ${w}`);
  return { file: location.label, applied, total: migrations.length, warnings };
}

/** Read-only view of the history; creates nothing. */
export async function postgresMigrationStatus(location: PostgresLocation, options: Pick<MigrateOptions, "migrationsDir"> = {}): Promise<MigrationStatus> {
  const migrations = readMigrations(options.migrationsDir ?? postgresMigrationsDir());
  const client = await connectPostgres(location);
  let rows: Row[] = [];
  try {
    if (await tableExists(client)) rows = await history(client);
  } finally {
    await client.end().catch(() => {});
  }
  const done = new Set(rows.filter((r) => r.finished_at != null && r.rolled_back_at == null).map((r) => r.migration_name));
  const known = new Set(migrations.map((m) => m.name));
  return {
    file: location.label,
    applied: migrations.filter((m) => done.has(m.name)).map((m) => m.name),
    pending: migrations.filter((m) => !done.has(m.name)).map((m) => m.name),
    unknown: [...done].filter((n) => !known.has(n)),
  };
}
