import { farmPortItems } from "../../lib/farms/schema.ts";

/**
 * Walking packets through rendered iptables rules, for the dispatch tests: a
 * table's chains from a restore payload, and the matches natfarm's dispatch,
 * farm and mark-tree rules use, evaluated as netfilter does for a new packet.
 */
export type Chains = Map<string, string[]>;

/** A new packet; without `mark`, mark matches are not evaluated (the mangle walk, before any mark is set). */
export type Packet = { dst: string; proto: string; dport: number; mark?: number };

export function chainsOf(payload: string, table: string): Chains {
  const out: Chains = new Map();
  let cur: string | null = null;
  for (const line of payload.split("\n")) {
    if (line.startsWith("*")) cur = line.slice(1);
    if (cur !== table) continue;
    const d = /^:(\S+) /.exec(line);
    if (d && !out.has(d[1]!)) out.set(d[1]!, []);
    const m = /^(?:\[\d+:\d+\] )?-A (\S+) (.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

const ipNum = (ip: string) => ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);

export function matches(spec: string, p: Packet): boolean {
  const d = /(?:^| )-d (\S+)\/(\d+)/.exec(spec);
  if (d) {
    const len = Number(d[2]);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if (((ipNum(p.dst) & mask) >>> 0) !== ((ipNum(d[1]!) & mask) >>> 0)) return false;
  }
  const proto = /(?:^| )-p (\S+)/.exec(spec);
  if (proto && proto[1] !== p.proto) return false;
  const dport = / --dport (\d+)(?::(\d+))?/.exec(spec);
  if (dport && (p.dport < Number(dport[1]) || p.dport > Number(dport[2] ?? dport[1]))) return false;
  const multi = / --dports (\S+)/.exec(spec);
  if (multi && !farmPortItems({ ports: multi[1]! }).some((i) => p.dport >= i.from && p.dport <= i.to)) return false;
  const mark = p.mark === undefined ? null : /-m mark (!? ?)--mark (0x[0-9a-f]+)(?:\/(0x[0-9a-f]+))?/.exec(spec);
  if (mark) {
    const mask = Number(mark[3] ?? "0xffffffff");
    const hit = ((p.mark! & mask) >>> 0) === Number(mark[2]);
    if (hit === (mark[1]!.trim() === "!")) return false;
  }
  return true;
}
