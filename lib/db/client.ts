import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "../generated/prisma/client.ts";
import { databaseEnv, resolveDatabaseUrl } from "./env.ts";
import { migrateDatabase, type MigrateOptions } from "./migrate.ts";

// No `import "server-only"` here: the CLI and the tests (plain Node) use this
// module too, and server-only throws outside React Server Components.

export type Db = PrismaClient;

interface Registry {
  clients: Map<string, PrismaClient>;
  migrated: Map<string, Promise<void>>;
}

// On globalThis so that Next.js dev reloads reuse one client per database
// instead of leaking a SQLite connection per edit.
const registry: Registry = ((globalThis as { __natfarmDb?: Registry }).__natfarmDb ??= {
  clients: new Map(),
  migrated: new Map(),
});

function locate(url?: string) {
  return url === undefined ? databaseEnv() : resolveDatabaseUrl(url);
}

/**
 * The Prisma client for `url` (default: NATFARM_DATABASE_URL), created on
 * first use and shared afterwards. Does not migrate: see openDatabase.
 */
export function getPrisma(url?: string): PrismaClient {
  const { url: resolved } = locate(url);
  let client = registry.clients.get(resolved);
  if (!client) {
    // timeout: SQLite's busy timeout, for when the CLI and the console write at once.
    const adapter = new PrismaBetterSqlite3({ url: resolved, timeout: 15_000 });
    client = new PrismaClient({ adapter });
    registry.clients.set(resolved, client);
  }
  return client;
}

/**
 * The client for `url` after its pending migrations have been applied (once
 * per database and process): what start-up code and the CLI should call.
 */
export async function openDatabase(url?: string, options?: MigrateOptions): Promise<PrismaClient> {
  const { url: resolved } = locate(url);
  let migrated = registry.migrated.get(resolved);
  if (!migrated) {
    migrated = Promise.resolve().then(() => {
      migrateDatabase(resolved, options);
    });
    registry.migrated.set(resolved, migrated);
    // A failed migration must be retried by the next caller, not cached.
    migrated.catch(() => registry.migrated.delete(resolved));
  }
  await migrated;
  return getPrisma(resolved);
}

/** Closes the client of one database (or all of them) and forgets it. */
export async function disconnectPrisma(url?: string): Promise<void> {
  const targets = url === undefined ? [...registry.clients.keys()] : [locate(url).url];
  await Promise.all(
    targets.map(async (key) => {
      const client = registry.clients.get(key);
      registry.clients.delete(key);
      registry.migrated.delete(key);
      await client?.$disconnect();
    }),
  );
}
