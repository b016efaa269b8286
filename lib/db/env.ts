import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

/**
 * Where natfarm's database lives.
 *
 *   NATFARM_DATABASE_URL  file:<path> (or a bare path): SQLite, embedded, one
 *                         installation. Relative paths are resolved against the
 *                         project root, not the current directory, so the
 *                         console, the CLI and the tests started from anywhere
 *                         agree on one file. Default: file:<project>/data/natfarm.db
 *                         postgresql://user:password@host:port/database (or
 *                         postgres://): PostgreSQL, shared by the nodes of a cluster.
 */

const PACKAGE_NAME = "natfarm";

function isProjectRoot(dir: string): boolean {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown };
    return pkg.name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

function findUp(start: string): string | null {
  let dir = path.resolve(start);
  for (;;) {
    if (isProjectRoot(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function moduleDir(): string | null {
  try {
    // Bundlers (Next.js) may hand out a URL that is not a file: URL.
    return path.dirname(fileURLToPath(import.meta.url));
  } catch {
    return null;
  }
}

let rootCache: string | undefined;

/**
 * The checkout natfarm runs from: found by walking up from this module (works
 * under tsx, vitest and from Next.js' .next output, which lives inside the
 * project), then from the current directory.
 */
export function projectRoot(): string {
  if (rootCache) return rootCache;
  const fromModule = moduleDir();
  rootCache = (fromModule && findUp(fromModule)) ?? findUp(process.cwd()) ?? process.cwd();
  return rootCache;
}

export class DatabaseEnvError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid database configuration:\n  ${issues.join("\n  ")}`);
    this.name = "DatabaseEnvError";
  }
}

export type DatabaseProvider = "sqlite" | "postgresql";

interface LocationBase {
  /** file:<absolute path> or the postgresql:// URL: the form the Prisma adapter and the migration runner take, and the registry's key */
  url: string;
  /** what messages show: the SQLite file, or postgresql://host:port/database (never the password) */
  label: string;
  /**
   * This installation's own directory for files that stay on the node (TLS
   * certificate, keys): beside the SQLite file, or <project>/data with PostgreSQL.
   */
  dataDir: string;
}

export interface SqliteLocation extends LocationBase {
  provider: "sqlite";
  /** absolute path of the SQLite file */
  file: string;
}

export interface PostgresLocation extends LocationBase {
  provider: "postgresql";
  /** no file: the database is on a server */
  file?: undefined;
  host: string;
  port: number;
  database: string;
}

export type DatabaseLocation = SqliteLocation | PostgresLocation;

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** host:port of a PostgreSQL URL as messages show it (IPv6 hosts in brackets). */
export function postgresEndpoint(loc: Pick<PostgresLocation, "host" | "port">): string {
  return `${loc.host.includes(":") ? `[${loc.host}]` : loc.host}:${loc.port}`;
}

function resolvePostgresUrl(raw: string): PostgresLocation {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DatabaseEnvError(["NATFARM_DATABASE_URL is not a valid postgresql:// URL"]);
  }
  const issues: string[] = [];
  // A socket directory can be given as ?host=/run/postgresql, as libpq allows.
  const socketHost = u.searchParams.get("host");
  const host = u.hostname.replace(/^\[|\]$/g, "") || socketHost || "";
  if (!host) issues.push("NATFARM_DATABASE_URL has no PostgreSQL host (postgresql://user:password@host:port/database)");
  const port = u.port ? Number(u.port) : 5432;
  if (!Number.isInteger(port) || port < 1 || port > 65535) issues.push(`NATFARM_DATABASE_URL has a bad port: ${u.port}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database) issues.push("NATFARM_DATABASE_URL has no database name (postgresql://user:password@host:port/database)");
  else if (database.includes("/")) issues.push(`NATFARM_DATABASE_URL: bad database name ${JSON.stringify(database)}`);
  if (issues.length) throw new DatabaseEnvError(issues);
  const endpoint = postgresEndpoint({ host, port });
  return {
    provider: "postgresql",
    url: raw,
    label: `postgresql://${endpoint}/${database}`,
    dataDir: path.join(projectRoot(), "data"),
    host,
    port,
    database,
  };
}

const DatabaseUrl = z
  .string()
  .trim()
  .min(1, { error: "NATFARM_DATABASE_URL is empty" })
  .refine((v) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) || v.startsWith("file:"), {
    error: (iss) =>
      `NATFARM_DATABASE_URL must be a SQLite file (file:<path>) or a PostgreSQL URL (postgresql://...), got ${JSON.stringify(String(iss.input).replace(/\/\/[^@/]*@/, "//…@"))}`,
  })
  .refine((v) => !/(^|:)\s*:memory:/.test(v), {
    // Every connection would get its own empty database: migrations applied
    // by the runner would be invisible to the client.
    error: "NATFARM_DATABASE_URL cannot be :memory:, use a file (a temporary one for tests)",
  });

/** Turns a file: URL or a path into an absolute location (creating its directory), or validates a postgresql:// URL. */
export function resolveDatabaseUrl(raw?: string): DatabaseLocation {
  if (raw !== undefined && POSTGRES_URL.test(raw.trim())) return resolvePostgresUrl(raw.trim());
  const parsed = DatabaseUrl.safeParse(raw ?? `file:${path.join(projectRoot(), "data", "natfarm.db")}`);
  if (!parsed.success) throw new DatabaseEnvError(parsed.error.issues.map((i) => i.message));
  let file = parsed.data.startsWith("file:") ? parsed.data.slice("file:".length) : parsed.data;
  // Prisma-style URLs may carry options (?connection_limit=1): SQLite has no use for them here.
  const q = file.indexOf("?");
  if (q >= 0) file = file.slice(0, q);
  if (file.startsWith("//")) file = file.replace(/^\/\/(localhost)?/, "");
  if (!file) throw new DatabaseEnvError(["NATFARM_DATABASE_URL has no file path"]);
  file = path.isAbsolute(file) ? path.normalize(file) : path.resolve(projectRoot(), file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return { provider: "sqlite", url: `file:${file}`, file, label: file, dataDir: path.dirname(file) };
}

const EnvSchema = z.object({
  NATFARM_DATABASE_URL: z.string().optional(),
});

let envCache: DatabaseLocation | undefined;

/** The configured database, validated once per process. */
export function databaseEnv(): DatabaseLocation {
  if (envCache) return envCache;
  const env = EnvSchema.parse(process.env);
  const raw = env.NATFARM_DATABASE_URL?.trim() ? env.NATFARM_DATABASE_URL : undefined;
  envCache = resolveDatabaseUrl(raw);
  return envCache;
}

/** Tests change NATFARM_DATABASE_URL between cases. */
export function resetDatabaseEnvForTests(): void {
  envCache = undefined;
}
