import type { ConnectionStats } from "../applier/conntrack.ts";
import { kernel, type KernelPort } from "../kernel/index.ts";
import type { Target } from "../privileged/target.ts";

// Every open farm page polls; one `conntrack -L` serves all of them for a second.
const STATS_TTL_MS = 1_000;
let cache: { at: number; target: string; value: Promise<ConnectionStats> } | null = null;

/** Connection counts per backend mark, from conntrack through the kernel port, shared by concurrent viewers. */
export function sharedConnectionStats(target: Target, k: KernelPort = kernel()): Promise<ConnectionStats> {
  const key = JSON.stringify(target);
  const now = Date.now();
  if (cache && cache.target === key && now - cache.at < STATS_TTL_MS) return cache.value;
  const value = k.connectionStats(target);
  cache = { at: now, target: key, value };
  value.catch(() => cache?.value === value && (cache = null));
  return value;
}
