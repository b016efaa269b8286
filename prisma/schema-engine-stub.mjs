#!/usr/bin/env node
// Stand-in for Prisma's native schema engine, which the CLI wants to download
// before any command and cannot get offline. `prisma generate` only needs the
// path to exist and be executable (generation runs on bundled wasm). Migration
// commands would need the real engine: they get a clear refusal instead of a
// hang or a download attempt.
const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-V")) {
  process.stdout.write("schema-engine-cli natfarm-offline-stub\n");
  process.exit(0);
}
const message =
  "natfarm: the native Prisma schema engine is not installed (offline install). " +
  "Migrations are applied by natfarm's own runner: `npm run db:migrate`. " +
  "To write a new migration: `npx tsx prisma/tools/new-migration.ts <name>`.";
// The CLI skips the first stderr line and parses the rest as the engine's
// JSON log lines; this shape makes it print the message as is.
process.stderr.write(
  "natfarm-offline-stub\n" + JSON.stringify({ level: "ERROR", target: "natfarm::stub", fields: { message } }) + "\n",
);
process.exit(1);
