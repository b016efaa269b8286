/**
 * Applies pending database migrations, offline.
 *
 *   npx tsx scripts/migrate.ts [--status] [--url file:<path>|postgresql://...]
 *
 * Default database: NATFARM_DATABASE_URL, else <project>/data/natfarm.db.
 * PostgreSQL takes prisma/postgresql/migrations, under an advisory lock.
 * Exit codes: 0 ok, 1 migration failed, 2 bad usage or configuration.
 */
import { DatabaseEnvError } from "../lib/db/env.ts";
import { DatabaseUnreachableError } from "../lib/db/errors.ts";
import { getMigrationStatus, migrate, MigrationError } from "../lib/db/migrate.ts";

function usage(): never {
  console.error("usage: npx tsx scripts/migrate.ts [--status] [--url file:<path>|postgresql://...]");
  process.exit(2);
}

const args = process.argv.slice(2);
let url: string | undefined;
let status = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--status") status = true;
  else if (a === "--url") url = args[++i] ?? usage();
  else if (a.startsWith("--url=")) url = a.slice("--url=".length);
  else usage();
}

try {
  if (status) {
    const s = await getMigrationStatus(url);
    console.log(`database: ${s.file}`);
    for (const n of s.applied) console.log(`  applied  ${n}`);
    for (const n of s.pending) console.log(`  pending  ${n}`);
    for (const n of s.unknown) console.log(`  unknown  ${n} (recorded in the database, not in prisma/migrations)`);
    process.exitCode = 0;
  } else {
    const r = await migrate(url, { log: (m) => console.log(m) });
    console.log(
      r.applied.length === 0
        ? `database ${r.file} is up to date (${r.total} migration${r.total === 1 ? "" : "s"})`
        : `database ${r.file}: applied ${r.applied.length} of ${r.total} migrations`,
    );
  }
} catch (err) {
  if (err instanceof DatabaseEnvError) {
    console.error(err.message);
    process.exitCode = 2;
  } else if (err instanceof MigrationError || err instanceof DatabaseUnreachableError) {
    console.error(`natfarm: ${err.message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
