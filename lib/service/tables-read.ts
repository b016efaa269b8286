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

export function sharedTablesRead(target: Target, kind: TablesReadKind = { scope: "all" }, k: KernelPort = kernel()): Promise<TablesSnapshot> {
  const key = JSON.stringify([target, k.engine ?? "iptables", kind.scope, kind.farm ?? "", kind.maxRules ?? 0]);
  const running = inflight.get(key);
  if (running) return running;
  const value = kind.scope === "all" ? k.readTables(target) : k.readNatfarmTables(target, { farm: kind.farm, maxRules: kind.maxRules });
  inflight.set(key, value);
  const done = () => {
    if (inflight.get(key) === value) inflight.delete(key);
  };
  value.then(done, done);
  return value;
}
