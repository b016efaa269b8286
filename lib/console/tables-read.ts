import "server-only";
import { readTables, type TablesSnapshot } from "../applier/index.ts";
import type { Target } from "../privileged/target.ts";

/**
 * One read of the live tables at a time: viewers asking while a read runs
 * share it (at 5,000 farms a read takes the best part of a second). The
 * tables page starts the read while it renders, so the browser's first
 * request joins a read already under way.
 */
let inflight: { key: string; value: Promise<TablesSnapshot> } | null = null;

export function sharedTablesRead(target: Target): Promise<TablesSnapshot> {
  const key = JSON.stringify(target);
  if (inflight && inflight.key === key) return inflight.value;
  const value = readTables(target);
  const entry = { key, value };
  inflight = entry;
  const done = () => {
    if (inflight === entry) inflight = null;
  };
  value.then(done, done);
  return value;
}
