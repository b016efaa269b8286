/**
 * The chains natfarm owns. Everything carries the NATFARM- prefix; the only
 * rules outside these chains are one jump from each built-in chain we hook.
 *
 * A new connection reaches its farm by its destination, not by walking every
 * farm: the mangle entry chain sends only new connections into a search tree
 * over (VIP, protocol, port) whose leaves are the farms' own chains
 * (`NATFARM-F-<farm>`, the guide's MARK rules as they are); nat sends marked
 * packets down a tree over the mark's bits to chains holding at most 64
 * backends' DNAT (or SNAT) rules. Each tree node holds at most 16 (mangle) or
 * 64 (nat) rules, so a new connection costs a few dozen rule evaluations
 * whatever the farm count, and an established one three (restore the mark,
 * two `--state NEW` checks).
 *
 * Chains are named by what they cover (a VIP prefix, a mark block), never by
 * their place in a list, so a change rewrites only the chains on its paths.
 * Chain count is kept low on purpose: iptables-nft's `--noflush` restore
 * costs about rules × declared chains (12,500 per-role farm chains took 2.8 s
 * for 5,000 farms, against 0.8 s in 771 shards), hence one chain per farm
 * (mangle only), nat's translation rules in shared mark blocks, and payloads
 * cut into sections of a bounded number of chains (plan.ts).
 */
export const CHAIN_PREFIX = "NATFARM-";

export const TABLES = ["mangle", "nat"] as const;
export type Table = (typeof TABLES)[number];

/** A chain's key in natfarm's maps of chains: `table chain`. */
export function chainKey(table: Table, chain: string): string {
  return `${table} ${chain}`;
}

/** Built-in chain → natfarm's entry chain in that table. */
export const HOOKS: { table: Table; builtin: string; chain: string }[] = [
  { table: "mangle", builtin: "PREROUTING", chain: "NATFARM-PREROUTING" },
  { table: "nat", builtin: "PREROUTING", chain: "NATFARM-PREROUTING" },
  { table: "nat", builtin: "POSTROUTING", chain: "NATFARM-POSTROUTING" },
];

/** The roots the entry chains jump to: the destination tree (mangle) and the two mark trees (nat). */
export const VIP_ROOT = "NATFARM-VIP";
export type NatRole = "DNAT" | "SNAT";
export const NAT_ROLES: NatRole[] = ["DNAT", "SNAT"];
/** Named by what they translate (DST: to a backend, SRC: to the VIP), so a dnat-only listing shows no SNAT, as the guide's does. */
export const NAT_ROOT: Record<NatRole, string> = { DNAT: "NATFARM-DST", SNAT: "NATFARM-SRC" };
export const NAT_ENTRY: Record<NatRole, string> = { DNAT: "NATFARM-PREROUTING", SNAT: "NATFARM-POSTROUTING" };

/**
 * The mark trees: the root splits on the mark's bits 12 and up (16 rules for
 * marks below 0x10000, 32 at most for natfarm's whole range), a second level
 * on the next 6 (64 rules), and a block holds the rules of up to 64
 * consecutive marks. Fixed, so a mark's chains are known without reading
 * anything. Marks of the second page (0x10200–0x1ffff) name their groups
 * with two hex digits (`NATFARM-DST-1f`) and their blocks with five
 * (`NATFARM-DST-1ffc0`); the first page's chains keep their names.
 */
export const MARK_BLOCK_BITS = 6;
export const MARK_BLOCK = 1 << MARK_BLOCK_BITS;

/** The second-level chain of a mark (marks sharing its top hex digit). */
export function markGroupChain(role: NatRole, mark: number): string {
  return `${NAT_ROOT[role]}-${(mark >> 12).toString(16)}`;
}

/** The block chain that holds a mark's translation. */
export function markBlockChain(role: NatRole, mark: number): string {
  return `${NAT_ROOT[role]}-${markBlockBase(mark).toString(16).padStart(4, "0")}`;
}

export function markBlockBase(mark: number): number {
  return mark & ~(MARK_BLOCK - 1);
}

/** A nat tree chain's role, level and first mark, or null for any other chain. */
export function parseMarkChain(name: string): { role: NatRole; level: "root" | "group" | "block"; base: number } | null {
  const m = /^NATFARM-(DST|SRC)(?:-([0-9a-f]|1[0-9a-f])|-([0-9a-f]{4}|1[0-9a-f]{4}))?$/.exec(name);
  if (!m) return null;
  const role: NatRole = m[1] === "DST" ? "DNAT" : "SNAT";
  if (m[2] !== undefined) return { role, level: "group", base: parseInt(m[2], 16) << 12 };
  if (m[3] !== undefined) return { role, level: "block", base: parseInt(m[3], 16) };
  return { role, level: "root", base: 0 };
}

/** FNV-1a: stable across processes and versions. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const FARM_CHAIN_PREFIX = "NATFARM-F-";
const CHAIN_NAME_MAX = 28;

/**
 * A farm's own chain in mangle. Names longer than iptables' 28 characters
 * allow keep their first 11 characters and a hash of the whole name after a
 * `~`, which no farm name holds, so they never meet a real name.
 */
export function farmChain(farm: string): string {
  const plain = `${FARM_CHAIN_PREFIX}${farm}`;
  if (plain.length <= CHAIN_NAME_MAX) return plain;
  return `${FARM_CHAIN_PREFIX}${farm.slice(0, 11)}~${(fnv1a(farm) & 0xffffff).toString(16).padStart(6, "0")}`;
}

export function isFarmChain(name: string): boolean {
  return name.startsWith(FARM_CHAIN_PREFIX);
}

export function isVipNodeChain(name: string): boolean {
  return name === VIP_ROOT || name.startsWith(`${VIP_ROOT}-`);
}

/** Chains of the layout before dispatch by destination (256 hash shards per role): a full apply replaces them. */
export function isLegacyShardChain(name: string): boolean {
  return /^NATFARM-(MARK|DNAT|SNAT)-[0-9a-f]{2}$/.test(name);
}

export function isOwnedChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}

/** Rule comments, as in the guide: FARM_<farm>_<backendIndex>_. */
export function backendComment(farm: string, index: number): string {
  return `FARM_${farm}_${index}_`;
}

/** A backend's rules carry its index; a farm's own rules (the source-hash HMARK) a lowercase tag. */
const FARM_COMMENT = /^FARM_(.+)_(?:(\d+)|([a-z]+))_$/;
/** The rule that names a farm's backends without a MARK rule (drained, down, lower priority). */
const IDLE_COMMENT = /^natfarm: farm (\S+), no new connections for (\S+)$/;

export function idleComment(farm: string, marks: string): string {
  return `natfarm: farm ${farm}, no new connections for ${marks}`;
}

export function parseIdleComment(comment: string): { farm: string; marks: string } | null {
  const m = IDLE_COMMENT.exec(comment);
  return m ? { farm: m[1]!, marks: m[2]! } : null;
}

export function parseFarmComment(comment: string): { farm: string; backend?: number } | null {
  const m = FARM_COMMENT.exec(comment);
  if (!m) {
    const idle = parseIdleComment(comment);
    return idle ? { farm: idle.farm } : null;
  }
  return m[2] !== undefined ? { farm: m[1]!, backend: Number(m[2]) } : { farm: m[1]! };
}

/**
 * Farms whose rules share a chain with farm `name`'s, so a change of it that
 * could not be undone leaves them in doubt too: a backend mark in the same
 * mark block, or a VIP in the same /24 (the dispatch nodes near its place).
 */
export function farmsSharingChains(name: string, farms: readonly { name: string; vip: string; backends?: readonly { mark?: unknown }[] }[]): string[] {
  const blockOf = (m: unknown) => {
    const n = typeof m === "number" ? m : typeof m === "string" ? Number(m) : NaN;
    return Number.isInteger(n) ? markBlockBase(n) : null;
  };
  const focus = farms.find((f) => f.name === name);
  if (!focus) return [];
  const net = (vip: string) => vip.split(".").slice(0, 3).join(".");
  const blocks = new Set<number | null>((focus.backends ?? []).map((b) => blockOf(b.mark)).filter((b) => b !== null));
  return farms
    .filter((f) => f.name !== name && (net(f.vip) === net(focus.vip) || (f.backends ?? []).some((b) => blocks.has(blockOf(b.mark)))))
    .map((f) => f.name);
}
