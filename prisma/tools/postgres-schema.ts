/**
 * The PostgreSQL twin of natfarm's schema and migrations, derived from the
 * SQLite ones (prisma/schema.prisma and prisma/migrations stay the one source):
 *
 *   npx tsx prisma/tools/postgres-schema.ts           writes prisma/postgresql/schema.prisma and
 *                                                     the missing twins in prisma/postgresql/migrations
 *   npx tsx prisma/tools/postgres-schema.ts --check   exits 1 when either is out of step (what CI's test checks)
 *
 * Offline: a twin is Prisma's own PostgreSQL SQL (the schema engine, wasm;
 * it wants a server to connect to, NATFARM_TEST_POSTGRES_URL, and changes nothing there) for the change its SQLite migration made. That change is read
 * back from the SQLite migrations themselves: they are replayed into scratch
 * files, each stage is introspected into a datamodel, the provider swapped,
 * and the engine diffs stage N-1 to stage N. So a twin says what its SQLite
 * migration says, even for migrations written by hand.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";
import { projectRoot } from "../../lib/db/env.ts";
import { migrateDatabase, readMigrations } from "../../lib/db/migrate.ts";
import { postgresMigrationsDir } from "../../lib/db/migrate-postgres.ts";
import { loadBindings } from "./schema-engine.ts";

const NO_FILTERS = { externalTables: [], externalEnums: [] };

export const sqliteSchemaFile = () => path.join(projectRoot(), "prisma", "schema.prisma");
export const postgresSchemaFile = () => path.join(projectRoot(), "prisma", "postgresql", "schema.prisma");

const HEADER =
  "// GENERATED from prisma/schema.prisma by prisma/tools/postgres-schema.ts: do not edit.\n" +
  "// natfarm's datamodel for PostgreSQL (NATFARM_DATABASE_URL=postgresql://...).\n" +
  "// Its client is generated into lib/generated/prisma-pg (npm's postinstall does it).\n\n";

/**
 * The PostgreSQL datamodel for a SQLite one. Only the provider differs today:
 * natfarm's schema uses the scalar types both map natively (Int, String,
 * Boolean, DateTime) and no @db attributes. A SQLite-only construct would
 * need its translation here; the migration test proves the result matches.
 */
export function toPostgresDatamodel(sqlite: string, opts: { output?: string } = {}): string {
  const datasource = /datasource\s+\w+\s*\{[^}]*provider\s*=\s*"sqlite"[^}]*\}/;
  if (!datasource.test(sqlite)) throw new Error("schema has no SQLite datasource block to derive from");
  let out = sqlite.replace(datasource, (block) => block.replace(/provider\s*=\s*"sqlite"/, 'provider = "postgresql"'));
  if (opts.output !== undefined) {
    out = out.replace(/(generator\s+client\s*\{[^}]*output\s*=\s*)"[^"]*"/, `$1"${opts.output}"`);
  }
  return out;
}

/** The committed file's expected content. */
export function derivedPostgresSchema(): string {
  return HEADER + toPostgresDatamodel(fs.readFileSync(sqliteSchemaFile(), "utf8"), { output: "../../lib/generated/prisma-pg" });
}

const BARE_SQLITE = 'generator client {\n  provider = "prisma-client"\n  output = "x"\n}\n\ndatasource db {\n  provider = "sqlite"\n}\n';

/** The datamodel of a SQLite database, as Prisma's introspection (`db pull`) reads it. */
async function introspectSqlite(dbFile: string): Promise<string> {
  const bg = await loadBindings();
  const adapter = new PrismaBetterSqlite3({ url: `file:${dbFile}` }, { shadowDatabaseUrl: ":memory:" });
  const file = path.join(path.dirname(dbFile), "schema.prisma");
  const engine = await bg.SchemaEngine.new({ datamodels: [[file, BARE_SQLITE]] }, () => {}, bindMigrationAwareSqlAdapterFactory(adapter));
  try {
    const r = await engine.introspect({
      schema: { files: [{ path: file, content: BARE_SQLITE }] },
      baseDirectoryPath: path.dirname(dbFile),
      force: true,
      compositeTypeDepth: 0,
      namespaces: null,
    } as never);
    return (r as { schema: { files: { content: string }[] } }).schema.files.map((f) => f.content).join("\n");
  } finally {
    engine.free();
  }
}

/**
 * A PostgreSQL server the engine may connect to: it insists on one at start,
 * though diffing two datamodels reads and writes nothing there.
 */
export function engineServerUrl(): string {
  const url = process.env.NATFARM_TEST_POSTGRES_URL?.trim() || process.env.NATFARM_PG_TOOL_URL?.trim();
  if (!url) {
    throw new Error(
      "set NATFARM_TEST_POSTGRES_URL=postgresql://user:password@host:port/postgres: Prisma's schema engine wants a PostgreSQL server to start " +
        "(it reads and writes nothing there)",
    );
  }
  return url;
}

/** Prisma's PostgreSQL SQL from one datamodel to another (null: `from` is empty), or "" when they agree. */
async function diffPostgres(from: string | null, to: string): Promise<string> {
  const bg = await loadBindings();
  const adapter = new PrismaPg({ connectionString: engineServerUrl() });
  const toFile = { path: "/natfarm/to/schema.prisma", content: to };
  const engine = await bg.SchemaEngine.new({ datamodels: [[toFile.path, to]] }, () => {}, bindMigrationAwareSqlAdapterFactory(adapter));
  try {
    const r = await engine.diff({
      from: from === null ? { tag: "empty" } : { tag: "schemaDatamodel", files: [{ path: "/natfarm/from/schema.prisma", content: from }] },
      to: { tag: "schemaDatamodel", files: [toFile] },
      script: true,
      exitCode: true,
      filters: NO_FILTERS,
    } as never);
    const out = r as { exitCode?: number; stdout?: string };
    return out.exitCode === 2 ? (out.stdout ?? "") : "";
  } finally {
    engine.free();
  }
}

export interface TwinPlan {
  /** SQLite migrations with no PostgreSQL twin, with the twin's SQL */
  missing: { name: string; sql: string }[];
  /** twins whose SQLite migration is gone */
  orphans: string[];
}

/** Which twins are missing, and their SQL. Reads stage by stage, so only as far as needed. */
export async function planTwins(
  sqliteDir = path.join(projectRoot(), "prisma", "migrations"),
  pgDir = postgresMigrationsDir(),
  opts: { namesOnly?: boolean } = {},
): Promise<TwinPlan> {
  const sqlite = readMigrations(sqliteDir);
  const twins = fs.existsSync(pgDir) ? new Set(readMigrations(pgDir).map((m) => m.name)) : new Set<string>();
  const names = new Set(sqlite.map((m) => m.name));
  const orphans = [...twins].filter((n) => !names.has(n));
  const missing: TwinPlan["missing"] = [];
  if (sqlite.every((m) => twins.has(m.name))) return { missing, orphans };
  // Names only: what a check needs, with no engine and no server.
  if (opts.namesOnly) return { missing: sqlite.filter((m) => !twins.has(m.name)).map((m) => ({ name: m.name, sql: "" })), orphans };

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-pgtwin-"));
  try {
    let previous: string | null = null;
    for (let i = 0; i < sqlite.length; i++) {
      const m = sqlite[i]!;
      const needed = !twins.has(m.name);
      const nextNeeded = sqlite.slice(i + 1).some((n) => !twins.has(n.name));
      if (!needed && !nextNeeded) continue;
      // Stage i: the first i+1 migrations replayed into their own file.
      const stageDir = path.join(scratch, `stage-${i}`);
      fs.mkdirSync(path.join(stageDir, "migrations"), { recursive: true });
      for (const s of sqlite.slice(0, i + 1)) {
        fs.mkdirSync(path.join(stageDir, "migrations", s.name));
        fs.writeFileSync(path.join(stageDir, "migrations", s.name, "migration.sql"), s.sql);
      }
      const dbFile = path.join(stageDir, "stage.db");
      migrateDatabase(`file:${dbFile}`, { migrationsDir: path.join(stageDir, "migrations") });
      const current = toPostgresDatamodel(await introspectSqlite(dbFile));
      if (needed) {
        // Stage i-1 was read on the previous turn: it is needed whenever stage i is.
        const prev = i === 0 ? null : previous;
        missing.push({ name: m.name, sql: await diffPostgres(prev, current) });
      }
      previous = current;
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return { missing, orphans };
}

const LOCK = "# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = \"postgresql\"\n";

/** Writes the derived schema and the missing twins; returns what it wrote. */
export async function writePostgresTwins(): Promise<string[]> {
  const written: string[] = [];
  const schemaFile = postgresSchemaFile();
  fs.mkdirSync(path.dirname(schemaFile), { recursive: true });
  const schema = derivedPostgresSchema();
  if (!fs.existsSync(schemaFile) || fs.readFileSync(schemaFile, "utf8") !== schema) {
    fs.writeFileSync(schemaFile, schema);
    written.push(path.relative(projectRoot(), schemaFile));
  }
  const dir = postgresMigrationsDir();
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, "migration_lock.toml");
  if (!fs.existsSync(lock)) fs.writeFileSync(lock, LOCK);
  const plan = await planTwins();
  if (plan.orphans.length) throw new Error(`PostgreSQL migrations without a SQLite migration: ${plan.orphans.join(", ")} (remove them, or restore their SQLite twin)`);
  for (const t of plan.missing) {
    fs.mkdirSync(path.join(dir, t.name));
    const file = path.join(dir, t.name, "migration.sql");
    // An empty twin keeps the histories in step when a SQLite migration changes nothing PostgreSQL sees.
    fs.writeFileSync(file, t.sql || "-- no change on PostgreSQL\n");
    written.push(path.relative(projectRoot(), file));
  }
  return written;
}

async function main(): Promise<number> {
  const check = process.argv.includes("--check");
  if (check) {
    const problems: string[] = [];
    const schemaFile = postgresSchemaFile();
    if (!fs.existsSync(schemaFile) || fs.readFileSync(schemaFile, "utf8") !== derivedPostgresSchema()) problems.push(`${path.relative(projectRoot(), schemaFile)} is not derived from prisma/schema.prisma`);
    const plan = await planTwins();
    for (const m of plan.missing) problems.push(`SQLite migration ${m.name} has no PostgreSQL twin`);
    for (const o of plan.orphans) problems.push(`PostgreSQL migration ${o} has no SQLite migration`);
    for (const p of problems) console.error(p);
    if (problems.length) console.error("run: npx tsx prisma/tools/postgres-schema.ts");
    return problems.length ? 1 : 0;
  }
  const written = await writePostgresTwins();
  console.log(written.length ? written.map((w) => `wrote ${w}`).join("\n") : "PostgreSQL schema and migrations already in step");
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) process.exitCode = await main();

/** Prisma's SQL that builds the derived datamodel on an empty PostgreSQL database (`migrate diff --from-empty`). */
export async function diffPostgresFromEmpty(): Promise<string> {
  return diffPostgres(null, fs.readFileSync(postgresSchemaFile(), "utf8"));
}
