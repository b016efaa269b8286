import fs from "node:fs";

/** Holds of a lock as tests/fixtures/lock-holder.ts logs them ("<pid> enter|leave <hrtime>"). */
export interface Hold {
  pid: number;
  enter: bigint;
  leave: bigint | null;
}

export function holdsOf(log: string): Hold[] {
  const open = new Map<number, Hold>();
  const holds: Hold[] = [];
  for (const l of fs.readFileSync(log, "utf8").split("\n").filter(Boolean)) {
    const [pid, what, t] = l.split(" ");
    if (what === "enter") {
      const h = { pid: Number(pid), enter: BigInt(t!), leave: null };
      open.set(h.pid, h);
      holds.push(h);
    } else open.get(Number(pid))!.leave = BigInt(t!);
  }
  return holds;
}

/** Pairs of holds whose intervals intersect (an unfinished hold lasts until `end`). */
export function overlaps(holds: Hold[], end: bigint): [Hold, Hold][] {
  const sorted = [...holds].sort((a, b) => (a.enter < b.enter ? -1 : 1));
  const out: [Hold, Hold][] = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if ((prev.leave ?? end) > sorted[i]!.enter) out.push([prev, sorted[i]!]);
  }
  return out;
}
