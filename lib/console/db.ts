import { openDatabase } from "../db/client.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";

/**
 * The console's database: the configured one (NATFARM_DATABASE_URL), with
 * pending migrations applied on first use, so `next dev` works without the
 * start script too.
 */
export function consoleDb(): Promise<PrismaClient> {
  return openDatabase();
}
