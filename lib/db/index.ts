export { getPrisma, openDatabase, disconnectPrisma, type Db } from "./client.ts";
export { databaseEnv, resolveDatabaseUrl, projectRoot, DatabaseEnvError, type DatabaseLocation, type DatabaseProvider } from "./env.ts";
export {
  migrate,
  getMigrationStatus,
  migrateDatabase,
  migrationStatus,
  readMigrations,
  defaultMigrationsDir,
  MigrationError,
  type MigrateOptions,
  type MigrateResult,
  type MigrationStatus,
} from "./migrate.ts";
export { uniqueViolation, isBusy, DatabaseUnreachableError } from "./errors.ts";
export { Prisma, type Farm, type Backend, type ApplyLog } from "../generated/prisma/client.ts";
