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
