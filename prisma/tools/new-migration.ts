/**
 * Offline stand-in for `prisma migrate dev --create-only`:
 *
 *   npx tsx prisma/tools/new-migration.ts <name>     writes prisma/migrations/<UTC stamp>_<name>/migration.sql
 *   npx tsx prisma/tools/new-migration.ts --print    prints the pending SQL only
 *
 * Replays the committed migrations into a scratch database with natfarm's
 * runner, then asks Prisma's schema engine (wasm) for the SQL from there to
 * prisma/schema.prisma: the SQL is what Prisma itself would generate.
 * Review it (Prisma warns about data loss; this tool does not), then run
 * `npm run db:migrate` and the tests. The PostgreSQL twin
 * (prisma/postgresql/migrations) is written too when NATFARM_TEST_POSTGRES_URL is set.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { projectRoot } from "../../lib/db/env.ts";
import { defaultMigrationsDir, migrateDatabase } from "../../lib/db/migrate.ts";
import { diffDatabaseToSchema, readSchema } from "./schema-engine.ts";

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (!arg || arg === "-h" || arg === "--help") {
    console.error("usage: npx tsx prisma/tools/new-migration.ts <name> | --print");
    return 2;
  }
  const name = arg === "--print" ? null : arg;
  if (name !== null && !/^[a-z0-9_]{1,60}$/.test(name)) {
    console.error("migration name: 1-60 characters [a-z0-9_]");
    return 2;
  }

  const migrationsDir = defaultMigrationsDir();
  fs.mkdirSync(migrationsDir, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-newmig-"));
  try {
    const dbFile = path.join(scratch, "replay.db");
    migrateDatabase(`file:${dbFile}`, { migrationsDir });
    const sql = await diffDatabaseToSchema(dbFile, readSchema(path.join(projectRoot(), "prisma", "schema.prisma")));
    if (sql === null) {
      console.error("schema.prisma and the migrations already agree: nothing to write");
      return 0;
    }
    if (name === null) {
      process.stdout.write(sql);
      return 0;
    }
    const dir = path.join(migrationsDir, `${stamp()}_${name}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "migration.sql"), sql);
    console.log(`wrote ${path.relative(projectRoot(), dir)}/migration.sql`);
    // Its PostgreSQL twin comes with it when a server is at hand for Prisma's engine; otherwise say how (db.test.ts fails until then).
    if (process.env.NATFARM_TEST_POSTGRES_URL?.trim()) {
      const { writePostgresTwins } = await import("./postgres-schema.ts");
      for (const w of await writePostgresTwins()) console.log(`wrote ${w}`);
    } else {
      console.log("now write its PostgreSQL twin: NATFARM_TEST_POSTGRES_URL=postgresql://... npx tsx prisma/tools/postgres-schema.ts");
    }
    return 0;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

process.exitCode = await main();
