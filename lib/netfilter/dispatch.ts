import { formatMark } from "../farms/marks.ts";
import { farmPortItems, type Protocol } from "../farms/schema.ts";
import { MARK_BLOCK, NAT_ROOT, markBlockBase, markBlockChain, markGroupChain, VIP_ROOT, type NatRole } from "./layout.ts";

/**
 * The dispatch trees, pure. mangle: a compressed 16-ary trie over a farm's
 * key — its VIP (8 hex digits), protocol (1) and lowest port (4) — whose
 * leaves are jumps into the farms' chains. A node exists only where two keys
 * part (so at most 16 rules per node and no chain of single-child nodes);
 * a subtree of one farm is a jump straight into the farm's chain with the
 * farm's own match. Farms never overlap (same VIP, overlapping protocol and
 * ports are refused), so a packet matches at most one farm and the order of
 * farms does not matter: a node's jump only has to cover every packet of the
 * farms below it (a VIP prefix, or the span of their ports), and a packet may
 * enter a node in vain. The same function builds the whole tree from the
 * farms or, for a scoped change, the nodes on a farm's paths from what those
 * nodes hold in the kernel (subtrees off the path stay as they are).
 */
export interface DispatchItem {
  /** A farm's full key, or a node's key prefix. */
  key: string;
  /** The ports the item covers (a node's jump matches this span below the protocol level). */
  lo: number;
  hi: number;
  /** The match of the jump into it (the rule without ` -j target`). */
  match: string;
  target: string;
}

const PROTO_DIGIT: Record<Protocol, string> = { all: "0", tcp: "1", udp: "2", sctp: "3" };
const DIGIT_PROTO: Record<string, Protocol> = { "0": "all", "1": "tcp", "2": "udp", "3": "sctp" };
const PROTO_LETTER: Record<string, string> = { "0": "a", "1": "t", "2": "u", "3": "s" };
const LETTER_DIGIT: Record<string, string> = { a: "0", t: "1", u: "2", s: "3" };
export const KEY_LENGTH = 13;

function hexOfIp(ip: string): string {
  return ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join("");
}

function ipOfHex(hex: string): string {
  const full = hex.padEnd(8, "0");
  return [0, 2, 4, 6].map((i) => parseInt(full.slice(i, i + 2), 16)).join(".");
}

/** The match every rule of a farm starts with, and the jump into its chain: `-d VIP/32 [-p P [-m multiport --dports …]]`. */
export function farmMatch(farm: { vip: string; protocol: Protocol; ports: string }): { dest: string; proto: string; ports: string } {
  const proto = farm.protocol === "all" ? "" : ` -p ${farm.protocol}`;
  const ports = farm.protocol === "all" || farmPortItems(farm).length === 0 ? "" : ` -m multiport --dports ${farm.ports}`;
  return { dest: `-d ${farm.vip}/32`, proto, ports };
}

/** A farm's item in the tree. */
export function farmItem(farm: { vip: string; protocol: Protocol; ports: string }, target: string): DispatchItem {
  const items = farm.protocol === "all" ? [] : farmPortItems(farm);
  const lo = items.length ? Math.min(...items.map((i) => i.from)) : 0;
  const hi = items.length ? Math.max(...items.map((i) => i.to)) : 65535;
  const m = farmMatch(farm);
  return { key: `${hexOfIp(farm.vip)}${PROTO_DIGIT[farm.protocol]}${lo.toString(16).padStart(4, "0")}`, lo, hi, match: `${m.dest}${m.proto}${m.ports}`, target };
}

/** The farm behind a live rule's match (a farm rule's, or the jump into its chain), or null. */
export function parseFarmMatch(spec: string): { vip: string; protocol: Protocol; ports: string } | null {
  const m = /^-d (\d+\.\d+\.\d+\.\d+)\/32(?: |$)/.exec(spec);
  if (!m) return null;
  const proto = /(?:^| )-p (tcp|udp|sctp)(?: |$)/.exec(spec);
  const ports = / -m multiport --dports (\S+)/.exec(spec);
  return { vip: m[1]!, protocol: (proto?.[1] as Protocol | undefined) ?? "all", ports: ports?.[1] ?? "*" };
}

export function nodeChain(prefix: string): string {
  if (prefix === "") return VIP_ROOT;
  if (prefix.length <= 8) return `${VIP_ROOT}-${prefix}`;
  return `${VIP_ROOT}-${prefix.slice(0, 8)}-${PROTO_LETTER[prefix[8]!] ?? "x"}${prefix.slice(9)}`;
}

/** The key prefix a node chain covers, or null for any other chain. */
export function parseNodeChain(name: string): string | null {
  if (name === VIP_ROOT) return "";
  const m = /^NATFARM-VIP-([0-9a-f]{1,8})(?:-([atus])([0-9a-f]{0,4}))?$/.exec(name);
  if (!m) return null;
  if (m[2] === undefined) return m[1]!;
  return m[1]!.length === 8 ? `${m[1]}${LETTER_DIGIT[m[2]]}${m[3]}` : null;
}

function nodeMatch(prefix: string, lo: number, hi: number): string {
  const n = prefix.length;
  if (n <= 8) return `-d ${ipOfHex(prefix)}/${4 * n}`;
  const proto = DIGIT_PROTO[prefix[8]!] ?? "all";
  const dest = `-d ${ipOfHex(prefix.slice(0, 8))}/32`;
  if (proto === "all") return dest;
  if (n === 9) return `${dest} -p ${proto}`;
  return `${dest} -p ${proto} -m ${proto} --dport ${lo === hi ? lo : `${lo}:${hi}`}`;
}

/** The span of ports a node's jump covers, from the jump's match. */
export function portSpanOf(match: string): { lo: number; hi: number } {
  const single = / --dports? (\d+)(?::(\d+))?$/.exec(match);
  if (single && !match.includes("--dports")) return { lo: Number(single[1]), hi: Number(single[2] ?? single[1]) };
  const list = / --dports (\S+)/.exec(match);
  if (list) {
    const nums = list[1]!.split(/[,:]/).map(Number);
    return { lo: Math.min(...nums), hi: Math.max(...nums) };
  }
  return { lo: 0, hi: 65535 };
}

/** A live jump rule of a node as an item: the node or farm chain it leads to. */
export function itemOfJump(spec: string): DispatchItem | null {
  const j = / -j (\S+)$/.exec(` ${spec}`);
  if (!j) return null;
  const target = j[1]!;
  const match = ` ${spec}`.slice(0, j.index).trim();
  const prefix = parseNodeChain(target);
  if (prefix !== null) return { key: prefix, ...portSpanOf(match), match, target };
  const farm = parseFarmMatch(match);
  if (!farm) return null;
  try {
    return { ...farmItem(farm, target), match };
  } catch {
    return null;
  }
}

/** Builds the compressed trie under `prefix` (the root for ""): every node chain created, with its rules. */
export function buildTree(items: readonly DispatchItem[], prefix = ""): Map<string, string[]> {
  const out = new Map<string, string[]>([[nodeChain(prefix), []]]);
  out.set(nodeChain(prefix), children(prefix.length, items, out).map((c) => `${c.match} -j ${c.target}`));
  return out;
}

function children(depth: number, items: readonly DispatchItem[], out: Map<string, string[]>): DispatchItem[] {
  // An item no longer than the node (two farms on one key: only a kernel that drifted) stays as it is.
  const here = items.filter((i) => i.key.length <= depth);
  const groups = new Map<string, DispatchItem[]>();
  for (const item of items) {
    if (item.key.length <= depth) continue;
    const digit = item.key[depth]!;
    let g = groups.get(digit);
    if (!g) groups.set(digit, (g = []));
    g.push(item);
  }
  const sorted = [...groups.keys()].sort();
  return [...here, ...sorted.map((d) => collapse(depth + 1, groups.get(d)!, out))];
}

function collapse(depth: number, group: DispatchItem[], out: Map<string, string[]>): DispatchItem {
  if (group.length === 1) return group[0]!;
  let d = depth;
  const first = group[0]!.key;
  while (d < KEY_LENGTH && group.every((i) => i.key.length > d && i.key[d] === first[d])) d++;
  const prefix = first.slice(0, d);
  const lo = Math.min(...group.map((i) => i.lo));
  const hi = Math.max(...group.map((i) => i.hi));
  const name = nodeChain(prefix);
  out.set(name, []);
  out.set(name, children(d, group, out).map((c) => `${c.match} -j ${c.target}`));
  return { key: prefix, lo, hi, match: nodeMatch(prefix, lo, hi), target: name };
}

/** The nodes a key's path may pass (every prefix of it): what a scoped change descends through. */
export function isPrefixOf(prefix: string, key: string): boolean {
  return key.startsWith(prefix);
}

/** nat: the jump from the root into a mark group, and from a group into a block. */
export function groupJumpSpec(role: NatRole, mark: number): string {
  return `-m mark --mark ${formatMark((mark >> 12) << 12)}/0xfffff000 -j ${markGroupChain(role, mark)}`;
}

export function blockJumpSpec(role: NatRole, mark: number): string {
  return `-m mark --mark ${formatMark(markBlockBase(mark))}/${formatMark((0xffffffff & ~(MARK_BLOCK - 1)) >>> 0)} -j ${markBlockChain(role, mark)}`;
}

/** The mark a nat translation rule matches, or null. */
export function markOfRule(spec: string): number | null {
  const m = /-m mark --mark (0x[0-9a-f]+)(?: |$)/.exec(spec);
  return m ? Number(m[1]) : null;
}

/**
 * A mark tree from its blocks: the root's and groups' jumps, in mark order.
 * `blocks` maps a block chain to any mark in it.
 */
export function markTree(role: NatRole, blocks: Iterable<number>): Map<string, string[]> {
  const out = new Map<string, string[]>([[NAT_ROOT[role], []]]);
  const bases = [...new Set([...blocks].map(markBlockBase))].sort((a, b) => a - b);
  const root: string[] = [];
  for (const base of bases) {
    const group = markGroupChain(role, base);
    if (!out.has(group)) {
      out.set(group, []);
      root.push(groupJumpSpec(role, base));
    }
    out.get(group)!.push(blockJumpSpec(role, base));
  }
  out.set(NAT_ROOT[role], root);
  return out;
}
