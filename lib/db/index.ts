export { getPrisma, openDatabase, disconnectPrisma, type Db } from "./client.ts";
export { databaseEnv, resolveDatabaseUrl, projectRoot, DatabaseEnvError, type DatabaseLocation } from "./env.ts";
export {
  migrateDatabase,
  migrationStatus,
  readMigrations,
  defaultMigrationsDir,
  MigrationError,
  type MigrateOptions,
  type MigrateResult,
  type MigrationStatus,
} from "./migrate.ts";
export { uniqueViolation } from "./errors.ts";
export { Prisma, type Farm, type Backend, type ApplyLog } from "../generated/prisma/client.ts";
