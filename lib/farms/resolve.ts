import { backendKey, MarkAllocator } from "./marks.ts";
import type { Farm, ResolvedFarm } from "./schema.ts";

/**
 * Gives every backend its mark. Explicit marks win; a backend without one
 * keeps the mark it already has (in the kernel or the database, passed in as
 * `known`) so that established connections keep their translation; the rest
 * get the lowest free marks.
 */
export function resolveMarks(farms: readonly Farm[], known: ReadonlyMap<string, number> = new Map()): ResolvedFarm[] {
  if (farms.every((f) => f.backends.every((b) => b.mark !== undefined))) return farms as ResolvedFarm[];
  const taken = new Set<number>();
  for (const f of farms) for (const b of f.backends) if (b.mark !== undefined) taken.add(b.mark);
  const reuse = new Map<string, number>();
  for (const f of farms) {
    for (const b of f.backends) {
      if (b.mark !== undefined) continue;
      const k = backendKey(f.name, b.ip, b.port);
      const mark = known.get(k);
      if (mark !== undefined && !taken.has(mark)) {
        taken.add(mark);
        reuse.set(k, mark);
      }
    }
  }
  const allocator = new MarkAllocator(taken);
  return farms.map((f) => ({
    ...f,
    backends: f.backends.map((b) => ({
      ...b,
      mark: b.mark ?? reuse.get(backendKey(f.name, b.ip, b.port)) ?? allocator.allocate(),
    })),
  }));
}
