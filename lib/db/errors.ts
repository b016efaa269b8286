import { Prisma } from "../generated/prisma/client.ts";

/**
 * The fields of the unique constraint a write broke (Prisma's P2002), or null
 * for any other error. Lets callers turn "duplicate mark" or "duplicate farm
 * name" into an operator-facing message without parsing SQLite's text.
 */
export function uniqueViolation(err: unknown): string[] | null {
  if (!(err instanceof Prisma.PrismaClientKnownRequestError) || err.code !== "P2002") return null;
  const meta = err.meta as Record<string, unknown> | undefined;
  const target = meta?.target;
  if (Array.isArray(target)) return target.map(String);
  if (typeof target === "string") return [target];
  // Through driver adapters the fields come in driverAdapterError.cause.constraint.
  const cause = (meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown; index?: unknown }; table?: unknown } } | undefined)?.cause;
  const fields = cause?.constraint?.fields;
  if (Array.isArray(fields)) return fields.map((f) => String(f).replace(/^"|"$/g, ""));
  // PostgreSQL names the index instead: Prisma's default name is <Model>_<field>_<field>_key,
  // and natfarm's field names have no underscore.
  const index = cause?.constraint?.index;
  if (typeof index === "string") {
    const table = typeof cause?.table === "string" ? cause.table : index.split("_")[0]!;
    const m = index.startsWith(`${table}_`) && index.endsWith("_key") ? index.slice(table.length + 1, -"_key".length) : "";
    if (m) return m.split("_");
  }
  return [];
}

/**
 * The database could not be reached at all: PostgreSQL down, refused, a bad
 * host or credentials. Start-up code prints the message and stops.
 */
export class DatabaseUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DatabaseUnreachableError";
  }
}

// Node's socket errors and libpq-style server refusals seen when connecting.
const CONNECT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOENT", "EACCES"]);
// 28xxx: authentication/authorization; 3D000: no such database; 57P03: starting up or shutting down; 53300: too many connections.
const CONNECT_SQLSTATES = /^(28|3D000|57P0|53300)/;

/** The error's chain of causes, outermost first (Prisma wraps the driver's error). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e != null && out.length < 8; e = (e as { cause?: unknown }).cause) {
    out.push(e);
    const agg = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(agg) && agg.length) out.push(...agg);
  }
  return out;
}

/**
 * For an error met while connecting to PostgreSQL at `endpoint` (host:port):
 * the operator-facing error naming the server, or null when the connection
 * itself was fine and something else failed.
 */
export function postgresConnectError(err: unknown, endpoint: string): DatabaseUnreachableError | null {
  if (err instanceof DatabaseUnreachableError) return err;
  for (const e of causes(err)) {
    const code = String((e as { code?: unknown })?.code ?? "");
    const kind = String((e as { kind?: unknown })?.kind ?? "");
    const message = e instanceof Error ? e.message : String(e);
    if (CONNECT_CODES.has(code) || CONNECT_SQLSTATES.test(code) || kind === "DatabaseNotReachable" || kind === "DatabaseDoesNotExist" || kind === "AuthenticationFailed" || /timeout expired|Connection terminated/i.test(message)) {
      const text = message || code || kind;
      return new DatabaseUnreachableError(`cannot reach PostgreSQL at ${endpoint}: ${text}`, { cause: err });
    }
  }
  return null;
}

/**
 * Another writer held what this write needed, and doing the write again from a
 * fresh read will do: SQLite's busy write lock, or PostgreSQL's serialization
 * failure, deadlock or lock timeout (Prisma's P2034 when it maps them).
 */
export function isBusy(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = String((e as { code?: unknown })?.code ?? "");
    if (code === "P2034" || code === "40001" || code === "40P01" || code === "55P03" || code === "SQLITE_BUSY") return true;
    const meta = (e as { meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } }).meta;
    const cause = meta?.driverAdapterError?.cause;
    if (cause?.kind === "TransactionWriteConflict" || cause?.originalCode === "40001" || cause?.originalCode === "40P01") return true;
    const message = e instanceof Error ? e.message : String(e);
    if (/SQLITE_BUSY|database is locked|could not serialize access|deadlock detected/i.test(message)) return true;
  }
  return false;
}
