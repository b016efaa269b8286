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
  const cause = (meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown } } } | undefined)?.cause;
  const fields = cause?.constraint?.fields;
  if (Array.isArray(fields)) return fields.map((f) => String(f).replace(/^"|"$/g, ""));
  return [];
}
