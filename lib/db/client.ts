import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.ts";
import { PrismaClient as PostgresPrismaClient } from "../generated/prisma-pg/client.ts";
import { databaseEnv, postgresEndpoint, resolveDatabaseUrl, type DatabaseLocation } from "./env.ts";
import { postgresConnectError } from "./errors.ts";
import { migrate, type MigrateOptions } from "./migrate.ts";

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
 * Prisma 7's generated client is bound to one provider (its query compiler
 * and the adapter check both are), so PostgreSQL has its own, generated from
 * prisma/postgresql/schema.prisma, itself derived from prisma/schema.prisma:
 * the same models, fields and API. Callers see one type, the SQLite client's,
 * whose API is the subset both providers share.
 */
function newClient(location: DatabaseLocation): PrismaClient {
  if (location.provider === "postgresql") {
    const adapter = new PrismaPg(
      {
        connectionString: location.url,
        connectionTimeoutMillis: 10_000,
        // A console, a checker and a CLI per node, several nodes: keep each pool small.
        max: 5,
        application_name: "natfarm",
      },
      // A pool whose server restarts emits 'error' on idle connections: the next query reconnects.
      { onPoolError: () => {} },
    );
    return new PostgresPrismaClient({ adapter }) as unknown as PrismaClient;
  }
  // timeout: SQLite's busy timeout, for when the CLI and the console write at once.
  return new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: location.url, timeout: 15_000 }) });
}

/**
 * The Prisma client for `url` (default: NATFARM_DATABASE_URL), created on
 * first use and shared afterwards. Does not migrate: see openDatabase.
 */
export function getPrisma(url?: string): PrismaClient {
  const location = locate(url);
  let client = registry.clients.get(location.url);
  if (!client) {
    client = newClient(location);
    registry.clients.set(location.url, client);
  }
  return client;
}

/**
 * The client for `url` after its pending migrations have been applied (once
 * per database and process): what start-up code and the CLI should call.
 */
export async function openDatabase(url?: string, options?: MigrateOptions): Promise<PrismaClient> {
  const location = locate(url);
  const resolved = location.url;
  let migrated = registry.migrated.get(resolved);
  if (!migrated) {
    migrated = migrate(resolved, options).then(
      () => {},
      (err: unknown) => {
        throw (location.provider === "postgresql" && postgresConnectError(err, postgresEndpoint(location))) || err;
      },
    );
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
