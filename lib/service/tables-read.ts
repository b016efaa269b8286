import type { TablesSnapshot } from "../applier/tables.ts";
import { kernel, type KernelPort } from "../kernel/index.ts";
import type { Target } from "../privileged/target.ts";

/**
 * Reads of the live tables, one at a time per kind: viewers asking while a
 * read runs share it. The page's default view (natfarm's chains, or one
 * farm's) lists only the chains it shows; the whole kernel (every chain,
 * foreign ones too) is read only for `scope=all`, which at 5,000 farms takes
 * the best part of a second.
 */
export interface TablesReadKind {
  scope: "natfarm" | "all";
  farm?: string;
  maxRules?: number;
}

const inflight = new Map<string, Promise<TablesSnapshot>>();
/**
 * A read that just ended still serves for a moment: the page starts the read
 * and does not wait for it, and the browser's first request, once the page
 * has loaded, takes that read rather than a second one. Shorter than the
 * page's 2 s refresh, so every refresh reads the kernel again.
 */
const FRESH_MS = 1_000;
const fresh = new Map<string, { at: number; value: Promise<TablesSnapshot> }>();

export function sharedTablesRead(target: Target, kind: TablesReadKind = { scope: "all" }, k: KernelPort = kernel()): Promise<TablesSnapshot> {
  const key = JSON.stringify([target, k.engine ?? "iptables", kind.scope, kind.farm ?? "", kind.maxRules ?? 0]);
  const running = inflight.get(key);
  if (running) return running;
  const recent = fresh.get(key);
  if (recent && Date.now() - recent.at < FRESH_MS) return recent.value;
  fresh.delete(key);
  const value = kind.scope === "all" ? k.readTables(target) : k.readNatfarmTables(target, { farm: kind.farm, maxRules: kind.maxRules });
  inflight.set(key, value);
  const done = (ok: boolean) => () => {
    if (inflight.get(key) === value) inflight.delete(key);
    if (ok) fresh.set(key, { at: Date.now(), value });
  };
  value.then(done(true), done(false));
  return value;
}

/** After a change of counters (a reset): the next read goes to the kernel, not to a read taken just before. */
export function forgetTablesReads(): void {
  fresh.clear();
}
