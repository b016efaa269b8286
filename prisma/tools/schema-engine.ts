import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

/**
 * Prisma's own schema engine, as WebAssembly (@prisma/schema-engine-wasm,
 * a devDependency pinned exactly), driven through the better-sqlite3 adapter.
 * Development and test tool only: it writes migration SQL the way
 * `prisma migrate dev` would, and tells whether a database matches the
 * datamodel. The app applies migrations with lib/db/migrate.ts.
 *
 * The package's entry point imports the .wasm file as an ES module, which
 * Node 20 cannot do without a flag, so the module is instantiated here by hand.
 */

type Bindings = typeof import("@prisma/schema-engine-wasm");
type Engine = Awaited<ReturnType<Bindings["SchemaEngine"]["new"]>>;

const require = createRequire(import.meta.url);
let bindings: Promise<Bindings> | undefined;

export function loadBindings(): Promise<Bindings> {
  bindings ??= (async () => {
    const dir = path.dirname(require.resolve("@prisma/schema-engine-wasm/schema_engine_bg"));
    const bg = (await import("@prisma/schema-engine-wasm/schema_engine_bg")) as unknown as Bindings & {
      __wbg_set_wasm(exports: WebAssembly.Exports): void;
    };
    const module = new WebAssembly.Module(fs.readFileSync(path.join(dir, "schema_engine_bg.wasm")));
    const imports: WebAssembly.Imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      (imports[imp.module] ??= {})[imp.name] = (bg as unknown as Record<string, WebAssembly.ImportValue>)[imp.name]!;
    }
    const instance = new WebAssembly.Instance(module, imports);
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return bg;
  })();
  return bindings;
}

const NO_FILTERS = { externalTables: [], externalEnums: [] };

export interface SchemaFile {
  path: string;
  content: string;
}

export function readSchema(file: string): SchemaFile {
  return { path: file, content: fs.readFileSync(file, "utf8") };
}

async function withEngine<T>(schema: SchemaFile, dbFile: string, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const bg = await loadBindings();
  const adapter = new PrismaBetterSqlite3({ url: `file:${dbFile}` }, { shadowDatabaseUrl: ":memory:" });
  const engine = await bg.SchemaEngine.new(
    { datamodels: [[schema.path, schema.content]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(adapter),
  );
  try {
    return await fn(engine);
  } finally {
    engine.free();
  }
}

/**
 * SQL that turns the database in `dbFile` into `schema` (Prisma's
 * `migrate diff --from-config-datasource --to-schema --script`), or null when
 * they already match. `_prisma_migrations` is ignored, as Prisma does.
 */
export async function diffDatabaseToSchema(dbFile: string, schema: SchemaFile): Promise<string | null> {
  return withEngine(schema, dbFile, async (engine) => {
    const result = await engine.diff({
      from: { tag: "schemaDatasource", files: [schema], configDir: path.dirname(schema.path) },
      to: { tag: "schemaDatamodel", files: [schema] },
      script: true,
      exitCode: true,
      filters: NO_FILTERS,
    });
    return result.exitCode === 2 ? (result.stdout ?? "") : null;
  });
}

export interface HistoryDiagnosis {
  editedMigrationNames: string[];
  failedMigrationNames: string[];
  hasMigrationsTable: boolean;
  /** null when the database history and the directory agree */
  history: unknown;
}

/**
 * What Prisma's engine thinks of the `_prisma_migrations` history in `dbFile`
 * against the migrations in `migrationsDir` (the check behind
 * `prisma migrate status`): proves the runner's bookkeeping is Prisma's.
 */
export async function diagnoseHistory(dbFile: string, schema: SchemaFile, migrationsDir: string): Promise<HistoryDiagnosis> {
  const dirs = fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(migrationsDir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort();
  const lockfile = path.join(migrationsDir, "migration_lock.toml");
  const migrationsList = {
    baseDir: migrationsDir,
    lockfile: { path: "migration_lock.toml", content: fs.existsSync(lockfile) ? fs.readFileSync(lockfile, "utf8") : null },
    shadowDbInitScript: "",
    migrationDirectories: dirs.map((name) => ({
      path: name,
      migrationFile: {
        path: "migration.sql",
        content: { tag: "ok" as const, value: fs.readFileSync(path.join(migrationsDir, name, "migration.sql"), "utf8") },
      },
    })),
  };
  return withEngine(schema, dbFile, async (engine) => {
    const out = await engine.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters: NO_FILTERS });
    return out as unknown as HistoryDiagnosis;
  });
}
