import { formatMark } from "../farms/marks.ts";

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
 *         which picks a backend, sets its mark, saves it to the connection
 *         and counts it in the backend's named counter;
 *   dnat  (nat, prerouting, dstnat): the mark → backend address (and port);
 *   snat  (nat, postrouting, srcnat): the mark → VIP, for `nat` farms.
 *
 * Per farm: chain `farm_<name>`; per backend of an up farm: counter
 * `cnt_<name>_<mark>` (named by the mark, which is stable for the backend's
 * life, so a re-ordered or re-weighted farm keeps its counts) and its
 * elements in the translation maps, commented `FARM_<name>_<index>_` as the
 * guide's rules are; a persistent farm: set `per_<name>` of client . mark
 * with per-element timeouts.
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
} as const;
export type MapName = keyof typeof MAPS;
export const MAP_NAMES = Object.keys(MAPS) as MapName[];

/** Maps whose keys are backend marks (their elements carry the backend's FARM_ comment). */
export const MARK_MAPS: MapName[] = ["dnat_port", "dnat_addr", "snat_vip"];

export const FARM_CHAIN_PREFIX = "farm_";
export const COUNTER_PREFIX = "cnt_";
export const PERSIST_PREFIX = "per_";
/** HMARK's seed in the iptables engine; the same number seeds jhash here. */
export const JHASH_SEED = 0x6e617466;

export function farmChain(farm: string): string {
  return `${FARM_CHAIN_PREFIX}${farm}`;
}

export function farmOfChain(chain: string): string | null {
  return chain.startsWith(FARM_CHAIN_PREFIX) && chain.length > FARM_CHAIN_PREFIX.length ? chain.slice(FARM_CHAIN_PREFIX.length) : null;
}

export function counterName(farm: string, mark: number): string {
  return `${COUNTER_PREFIX}${farm}_${mark.toString(16)}`;
}

/** Farm names may hold `_`: the mark is the part after the last one. */
export function parseCounterName(name: string): { farm: string; mark: number } | null {
  const m = /^cnt_(.+)_([0-9a-f]+)$/.exec(name);
  return m ? { farm: m[1]!, mark: parseInt(m[2]!, 16) } : null;
}

export function persistSet(farm: string): string {
  return `${PERSIST_PREFIX}${farm}`;
}

export function farmOfPersistSet(name: string): string | null {
  return name.startsWith(PERSIST_PREFIX) && name.length > PERSIST_PREFIX.length ? name.slice(PERSIST_PREFIX.length) : null;
}

/** The guide's comment, carried by a backend's map elements and its rules. */
export function backendTag(farm: string, index: number): string {
  return `FARM_${farm}_${index}_`;
}

export function farmTag(farm: string, tag: string): string {
  return `FARM_${farm}_${tag}_`;
}

export function mark(m: number): string {
  return formatMark(m);
}

/** Only natfarm's own marks are put back on a connection's packets: other tools' marks are left alone. */
export const OWN_MARKS = "0x200-0xffff";
