import type { PrismaClient } from "../generated/prisma/client.ts";

type Tx = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];

/**
 * A write transaction that reads before it writes (every farm write reads the
 * farms' "before" for the configuration history first) must hold SQLite's write
 * lock from its first statement. SQLite's BEGIN is deferred: two such
 * transactions in two processes (the console and `natfarm import`, two imports)
 * both take a read snapshot, the first commits, and the second's first write
 * then fails at once with SQLITE_BUSY_SNAPSHOT — the busy timeout cannot help,
 * as the snapshot is stale — which Prisma's adapter reports as "Operation has
 * timed out". A write statement first makes the other process wait on the busy
 * timeout instead, and read what the first one committed.
 *
 * The statement matches no row: on PostgreSQL (MVCC, row locks) it changes and
 * locks nothing.
 */
export async function takeWriteLock(tx: { $executeRawUnsafe(query: string): Promise<number> }): Promise<void> {
  await tx.$executeRawUnsafe(`UPDATE "FarmRevision" SET "revision" = "revision" WHERE 1 = 0`);
}

/**
 * Prisma ends an interactive transaction after 5 s by default, counted from
 * its start: a writer that first waits on another process's import for the
 * write lock (SQLite's busy timeout, 15 s: lib/db/client.ts), or writes
 * thousands of farms on a loaded machine, was cut off mid-way ("Transaction
 * already closed"), although nothing was wrong. The limit stays, as the
 * guard against a transaction that never ends, but above the lock wait plus
 * a large import.
 */
export const FARM_WRITE_TRANSACTION = { maxWait: 30_000, timeout: 180_000 } as const;

/** A farm write: the write lock first, then `fn`, under FARM_WRITE_TRANSACTION's limits. */
export function farmWriteTransaction<T>(db: PrismaClient, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    await takeWriteLock(tx);
    return fn(tx);
  }, FARM_WRITE_TRANSACTION);
}
