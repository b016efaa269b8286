import { Prisma } from "../generated/prisma/client.ts";
import { isBusy, uniqueViolation } from "../db/errors.ts";

/**
 * Writers in other processes (the console, `natfarm import`, the health
 * checker) share the database. A writer reads the farm set, validates the
 * change against it and writes in one transaction; when another process
 * wrote in between, the database's own constraints refuse the write (a farm
 * name or a mark taken meanwhile: Prisma's P2002; a row gone meanwhile:
 * P2025), or SQLite reports the write lock busy or PostgreSQL a serialization
 * failure or deadlock. Such a write is done again
 * from a fresh read, which then sees the other process's change; these are
 * the errors that call for it.
 */
export function isWriteConflict(e: unknown): boolean {
  if (uniqueViolation(e) !== null) return true;
  if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2025") return true;
  return isBusy(e);
}

/** How many times a write that met another process's write is done again before giving up. */
export const WRITE_ATTEMPTS = 4;

/** Another process kept changing the same farms: nothing was written, running again will do. (CLI exit 1.) */
export class ConcurrentChangeError extends Error {
  override name = "ConcurrentChangeError";
}

/** Runs `write` again from scratch while it meets another process's write; `again` runs before each new attempt. */
export async function retryOnConflict<T>(write: () => Promise<T>, onGiveUp: (e: unknown) => T | Promise<T>, again?: () => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (e) {
      if (!isWriteConflict(e)) throw e;
      if (attempt >= WRITE_ATTEMPTS) return onGiveUp(e);
      again?.();
      // A little jitter, so that two processes that met once do not meet again.
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40 * attempt));
    }
  }
}
