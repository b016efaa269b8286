import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { databaseEnv } from "../db/env.ts";
import { PrismaClient } from "../generated/prisma/client.ts";

/**
 * TEMPORARY: the console's Prisma client until lib/db/client.ts lands.
 */
const g = globalThis as unknown as { natfarmConsoleDb?: PrismaClient };

export async function consoleDb(): Promise<PrismaClient> {
  g.natfarmConsoleDb ??= new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: databaseEnv().url }) });
  return g.natfarmConsoleDb;
}
