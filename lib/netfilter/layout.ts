/**
 * The chains natfarm owns. Everything carries the NATFARM- prefix; the only
 * rules outside these chains are one jump from each built-in chain we hook.
 *
 * Farms live in 256 shard chains per role, picked by a hash of the farm name,
 * rather than one chain per farm: on the nf_tables backend an
 * `iptables-restore --noflush` that fills 15,000 per-farm chains (5,000 farms)
 * took 7 s here, against 1.3 s for the same rules in 256 shards, while a
 * one-farm change still rewrites only one small shard (~20 farms at 5,000).
 * The entry chains hold one jump per shard in use (at most 256 rules), so a
 * one-farm change never has to read a chain that grows with the farm count.
 * Each rule in a shard carries its farm's full match (VIP, protocol, ports),
 * as the guide's rules do.
 */
export const CHAIN_PREFIX = "NATFARM-";
export const SHARD_COUNT = 256;

export const TABLES = ["mangle", "nat"] as const;
export type Table = (typeof TABLES)[number];

/** Built-in chain → natfarm's entry chain in that table. */
export const HOOKS: { table: Table; builtin: string; chain: string }[] = [
  { table: "mangle", builtin: "PREROUTING", chain: "NATFARM-PREROUTING" },
  { table: "nat", builtin: "PREROUTING", chain: "NATFARM-PREROUTING" },
  { table: "nat", builtin: "POSTROUTING", chain: "NATFARM-POSTROUTING" },
];

export type ShardRole = "MARK" | "DNAT" | "SNAT";
export const SHARD_TABLE: Record<ShardRole, Table> = { MARK: "mangle", DNAT: "nat", SNAT: "nat" };
/** Which entry chain jumps into each kind of shard. */
export const SHARD_ENTRY: Record<ShardRole, string> = {
  MARK: "NATFARM-PREROUTING",
  DNAT: "NATFARM-PREROUTING",
  SNAT: "NATFARM-POSTROUTING",
};
export const SHARD_ROLES: ShardRole[] = ["MARK", "DNAT", "SNAT"];

/** The role and shard of a shard chain's name, or null for any other chain. */
export function parseShardChain(name: string): { role: ShardRole; shard: number } | null {
  const m = /^NATFARM-(MARK|DNAT|SNAT)-([0-9a-f]{2})$/.exec(name);
  return m ? { role: m[1] as ShardRole, shard: parseInt(m[2]!, 16) } : null;
}

export function shardOfChain(name: string): number | null {
  return parseShardChain(name)?.shard ?? null;
}

/** FNV-1a: stable across processes and versions, so a farm never changes shard. */
export function shardOf(farmName: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < farmName.length; i++) {
    h ^= farmName.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % SHARD_COUNT;
}

export function shardChain(role: ShardRole, shard: number): string {
  return `${CHAIN_PREFIX}${role}-${shard.toString(16).padStart(2, "0")}`;
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

export function parseFarmComment(comment: string): { farm: string; backend?: number } | null {
  const m = FARM_COMMENT.exec(comment);
  if (!m) return null;
  return m[2] !== undefined ? { farm: m[1]!, backend: Number(m[2]) } : { farm: m[1]! };
}
