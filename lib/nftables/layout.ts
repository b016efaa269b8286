import { formatMark, MARK_MAX, MARK_MIN } from "../farms/marks.ts";

/**
 * natfarm's nftables layout: everything lives in ONE table natfarm owns
 * (`table ip natfarm`); no other table, and none of iptables' own, is ever
 * read for writing or touched. Three base chains do the work of the guide's
 * three hooks, and a new connection finds its farm with one verdict-map
 * lookup on VIP, protocol and port (ranges and lists are interval elements),
 * not by walking every farm:
 *
 *   mark  (filter, prerouting, mangle priority): natfarm's connection mark
 *         back onto the packet; new connections `vmap @dispatch` (or
 *         `@dispatch_all` for protocol "all" farms) into their farm's chain,
 *         which draws a slot (`numgen random`, `numgen inc` or `jhash ip
 *         saddr`, offset to the farm's own slot range), turns it into a
 *         backend's mark through the `slots` map, saves the mark to
 *         the connection and counts it in the backend's named counter
 *         (through the `counters` map);
 *   dnat  (nat, prerouting, dstnat): the mark → backend address (and port);
 *   snat  (nat, postrouting, srcnat): the mark → VIP, for `nat` farms.
 *
 * Per farm: chain `farm_<name>`; per backend of an up farm: its elements in
 * the maps, commented `FARM_<name>_<index>_` as the guide's rules are, and
 * its counter: its element of the `backends` set, which counts every new
 * connection given its mark (keyed by the mark, stable for the backend's
 * life, so a re-weighted farm keeps its counts). Named counter objects were
 * measured first: nft fetches every object before any rule or element
 * command, and 20,000 of them cost 0.8 s per command. Persistent clients
 * live in one set `persist` of client . mark (marks are unique across
 * farms) with the farm's TTL per element.
 *
 * No rule holds an anonymous set or map: every one of those is a set object
 * of its own in the kernel, and 10,000 of them (5,000 farms) made a full
 * load take 14 s and any `nft list` 3 s here; named maps keep both flat.
 */
export const NFT_TABLE = "natfarm";
export const NFT_FAMILY = "ip";
export const TABLE_REF = `${NFT_FAMILY} ${NFT_TABLE}`;

export const BASE_CHAINS = {
  mark: { type: "filter", hook: "prerouting", priority: "mangle", prio: -150 },
  dnat: { type: "nat", hook: "prerouting", priority: "dstnat", prio: -100 },
  snat: { type: "nat", hook: "postrouting", priority: "srcnat", prio: 100 },
} as const;
export type BaseChainName = keyof typeof BASE_CHAINS;
/** nft keywords cannot be chain names: the base chains are called this in the kernel. */
export const BASE_CHAIN_NAME: Record<BaseChainName, string> = { mark: "pre_mark", dnat: "pre_dnat", snat: "post_snat" };

/** The skeleton's maps: their declarations are fixed, their elements belong to farms. */
export const MAPS = {
  dispatch: { type: "ipv4_addr . inet_proto . inet_service", data: "verdict", interval: true },
  dispatch_all: { type: "ipv4_addr", data: "verdict", interval: false },
  dnat_port: { type: "mark", data: "ipv4_addr . inet_service", interval: false },
  dnat_addr: { type: "mark", data: "ipv4_addr", interval: false },
  snat_vip: { type: "mark", data: "ipv4_addr", interval: false },
  /** One element per slot (see render.ts: an interval map would be fetched whole before every element command). */
  slots: { type: "mark", data: "mark", interval: false },
  /** Every backend's mark, each element with its own counter: the per-backend counters of the live view. */
  backends: { type: "mark", data: null, interval: false },
  /**
   * One element, replaced by every natfarm transaction (delete the old, add
   * a new one): a writer that planned from an older state finds its old
   * stamp gone and the whole transaction refused, instead of writing over a
   * change it did not see.
   */
  stamp: { type: "mark", data: null, interval: false },
} as const;
export type MapName = keyof typeof MAPS;
export const MAP_NAMES = Object.keys(MAPS) as MapName[];

/** Maps whose keys are backend marks (their elements carry the backend's FARM_ comment). */
export const MARK_MAPS: MapName[] = ["dnat_port", "dnat_addr", "snat_vip", "backends"];
export const PERSIST_SET = "persist";
/** Room for persistent clients across all farms (a hash set grows to this on demand). */
export const PERSIST_SIZE = 262_144;

/**
 * A farm's slots start at its lowest backend mark shifted past the largest
 * slot count (64 backends of weight 100 = 6,400 < 2^13): unique per farm,
 * since marks are, and above natfarm's own mark range, so a slot value is
 * never taken for a backend's mark.
 */
export const SLOT_SHIFT = 13;
export function slotBase(marks: readonly number[]): number {
  return Math.min(...marks) * 2 ** SLOT_SHIFT;
}

export const FARM_CHAIN_PREFIX = "farm_";
/** HMARK's seed in the iptables engine; the same number seeds jhash here. */
export const JHASH_SEED = 0x6e617466;

export function farmChain(farm: string): string {
  return `${FARM_CHAIN_PREFIX}${farm}`;
}

export function farmOfChain(chain: string): string | null {
  return chain.startsWith(FARM_CHAIN_PREFIX) && chain.length > FARM_CHAIN_PREFIX.length ? chain.slice(FARM_CHAIN_PREFIX.length) : null;
}

/** The guide's comment, carried by a backend's map elements and its rules. */
export function backendTag(farm: string, index: number): string {
  return `FARM_${farm}_${index}_`;
}

const TAG = /^FARM_(.+)_(?:(\d+)|([a-z]+))_$/;
export function parseTag(comment: string | undefined): { farm: string; backend?: number } | null {
  const m = comment === undefined ? null : TAG.exec(comment);
  if (!m) return null;
  return m[2] !== undefined ? { farm: m[1]!, backend: Number(m[2]) } : { farm: m[1]! };
}

export function farmTag(farm: string, tag: string): string {
  return `FARM_${farm}_${tag}_`;
}

export function mark(m: number): string {
  return formatMark(m);
}

/** Only natfarm's own marks (its reserved range, lib/farms/marks.ts) are put back on a connection's packets: other tools' marks are left alone. */
export const OWN_MARKS = `${mark(MARK_MIN)}-${mark(MARK_MAX)}`;
