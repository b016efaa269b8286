import { farmPortItems, type ResolvedFarm } from "../farms/schema.ts";
import { eligibleBackends } from "../netfilter/render.ts";
import {
  BASE_CHAIN_NAME,
  BASE_CHAINS,
  backendTag,
  farmChain,
  farmTag,
  JHASH_SEED,
  MAP_NAMES,
  MAPS,
  mark,
  OWN_MARKS,
  PERSIST_SET,
  PERSIST_SIZE,
  slotBase,
  TABLE_REF,
  NFT_TABLE,
  type BaseChainName,
  type MapName,
} from "./layout.ts";

/**
 * Farms → what natfarm wants in `table ip natfarm`. Pure. Every rule and
 * element is kept as the exact text natfarm writes, which is also the text
 * the read-back (lib/nftables/json.ts) prints from `nft -j`: desired and
 * live compare as strings (drift, unchanged applies that write nothing).
 */
export interface NftElement {
  map: MapName;
  key: string;
  /** A map's data; null for a set's element. */
  value: string | null;
  comment?: string;
}

export interface FarmNft {
  farm: string;
  /** Rules of the farm's chain, in order; null when the farm has no chain (stopped). */
  rules: string[] | null;
  elements: NftElement[];
}

export interface NftDesired {
  farms: Map<string, FarmNft>;
}

/**
 * Every map lookup with data is done by ONE rule, in these helper chains
 * (farm chains jump to them): the kernel checks each element added to a map
 * against every rule bound to it, and each rule bound to a map against
 * every element, so 5,000 farm chains looking up `slots` themselves made a
 * full load take 8–13 s here instead of well under one.
 */
export const HELPER = { pick: "pick_backend", count: "count_backend" } as const;
export const HELPER_RULES: Record<keyof typeof HELPER, string> = {
  pick: "meta mark set meta mark map @slots",
  count: "meta mark @backends",
};

/** The base chains' rules: fixed, whatever the farms. */
export const BASE_RULES: Record<BaseChainName, string[]> = {
  mark: [
    `ct mark ${OWN_MARKS} meta mark set ct mark`,
    "ct state new ip daddr . meta l4proto . th dport vmap @dispatch",
    "ct state new ip daddr vmap @dispatch_all",
  ],
  dnat: ["meta l4proto { tcp, udp, sctp } dnat ip addr . port to meta mark map @dnat_port", "dnat to meta mark map @dnat_addr"],
  snat: ["snat to meta mark map @snat_vip"],
};

/** Persistent clients: one entry per client and backend, each with its farm's TTL, refreshed by every new connection. */
export const PERSIST_SET_DECL = `type ipv4_addr . mark; size ${PERSIST_SIZE}; flags dynamic,timeout;`;

export function elementText(e: Pick<NftElement, "key" | "value" | "comment">): string {
  return `${e.key}${e.comment !== undefined ? ` comment ${quote(e.comment)}` : ""}${e.value !== null ? ` : ${e.value}` : ""}`;
}

/** nft's string quoting: natfarm's names and comments hold only [A-Za-z0-9_-], so plain double quotes suffice. */
export function quote(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)} for nft`);
  return `"${s}"`;
}

/**
 * The rule that picks a backend: a slot from the farm's own range, turned
 * into the backend's mark by the `slots` map. Weight (and priority, among
 * the best level) give each backend as many slots as its weight out of Σw
 * (both divided by the weights' gcd), so the shares are exact; round robin
 * and source hash one slot each. One element per slot, not interval
 * elements: nft fetches every element of a non-concatenated interval map
 * from the kernel before ANY element command (src/cache.c,
 * NFT_CACHE_SETELEM_MAYBE), which made each one-farm change read all farms'
 * slots (15 ms of a 16 ms change at 1,000 farms in a warm libnftables
 * session here); a plain map is not read.
 */
function schedule(farm: ResolvedFarm, chosen: { b: ResolvedFarm["backends"][number]; index: number }[], base: number): { expr: string; slots: NftElement[] } {
  if (chosen.length === 1) return { expr: `meta mark set ${mark(chosen[0]!.b.mark)}`, slots: [] };
  const slots: NftElement[] = [];
  let at = 0;
  const weighted = farm.scheduler === "weight" || farm.scheduler === "priority";
  // Shares depend only on the weights' ratios: 100:100 needs 2 slots, not 200.
  const unit = weighted ? chosen.reduce((g, { b }) => gcd(g, b.weight), 0) : 1;
  for (const { b, index } of chosen) {
    const width = weighted ? b.weight / unit : 1;
    for (let s = 0; s < width; s++) slots.push({ map: "slots", key: mark(base + at + s), value: mark(b.mark), comment: backendTag(farm.name, index) });
    at += width;
  }
  const offset = `offset ${mark(base)}`;
  const draw =
    farm.scheduler === "roundrobin"
      ? `numgen inc mod ${at} ${offset}`
      : farm.scheduler === "sourcehash"
        ? `jhash ip saddr mod ${at} seed ${mark(JHASH_SEED)} ${offset}`
        : `numgen random mod ${at} ${offset}`;
  return { expr: `meta mark set ${draw} jump ${HELPER.pick}`, slots };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const rendered = new Map<string, FarmNft>();
const RENDERED_MAX = 50_000;

/** One farm's chain and elements. Cached by the farm's JSON: a long-running console re-renders only what changed. */
export function renderFarmNft(farm: ResolvedFarm): FarmNft {
  const key = JSON.stringify(farm);
  const hit = rendered.get(key);
  if (hit) return hit;
  const r = renderUncached(farm);
  if (rendered.size >= RENDERED_MAX) rendered.clear();
  rendered.set(key, r);
  return r;
}

function renderUncached(farm: ResolvedFarm): FarmNft {
  const out: FarmNft = { farm: farm.name, rules: null, elements: [] };
  if (farm.status !== "up") return out;
  const chain = farmChain(farm.name);
  const rules: string[] = [];
  const chosen = eligibleBackends(farm);
  const count = `jump ${HELPER.count}`;
  if (chosen.length > 0) {
    const { expr, slots } = schedule(farm, chosen, slotBase(farm.backends.map((b) => b.mark)));
    out.elements.push(...slots);
    const tag = ` comment ${quote(farmTag(farm.name, farm.scheduler))}`;
    if (farm.persistence !== "srcip") {
      rules.push(`${expr}${tag}`);
      rules.push(`ct mark set meta mark ${count}`);
    } else {
      // The scheduler's choice waits in the connection mark while each backend's entry for this client may override it
      // (the last match wins, as with the iptables engine's recent lists); the final mark refreshes the client's entry.
      const set = `@${PERSIST_SET}`;
      rules.push(`${expr}${tag}`, "ct mark set meta mark");
      for (const { b, index } of chosen) {
        rules.push(`meta mark set ${mark(b.mark)} ip saddr . meta mark ${set} ct mark set meta mark comment ${quote(backendTag(farm.name, index))}`);
      }
      rules.push(`meta mark set ct mark update ${set} { ip saddr . meta mark timeout ${farm.persistenceTtl}s } ${count}`);
    }
  }
  out.rules = rules;

  const goto = `goto ${chain}`;
  if (farm.protocol === "all") out.elements.push({ map: "dispatch_all", key: farm.vip, value: goto });
  else {
    const items = farmPortItems(farm);
    const ranges = items.length === 0 ? [{ from: 0, to: 65535 }] : items;
    for (const it of ranges) {
      out.elements.push({ map: "dispatch", key: `${farm.vip} . ${farm.protocol} . ${it.from === it.to ? it.from : `${it.from}-${it.to}`}`, value: goto });
    }
  }
  // Translations exist for every backend whatever its state: connections already bound to a drained backend keep their way.
  farm.backends.forEach((b, index) => {
    const comment = backendTag(farm.name, index);
    const m = mark(b.mark);
    out.elements.push({ map: "backends", key: m, value: null, comment });
    if (b.port !== null && farm.protocol !== "all") out.elements.push({ map: "dnat_port", key: m, value: `${b.ip} . ${b.port}`, comment });
    else out.elements.push({ map: "dnat_addr", key: m, value: b.ip, comment });
    if (farm.mode === "nat") out.elements.push({ map: "snat_vip", key: m, value: farm.vip, comment });
  });
  return out;
}

export function renderNft(farms: readonly ResolvedFarm[]): NftDesired {
  const sorted = [...farms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { farms: new Map(sorted.map((f) => [f.name, renderFarmNft(f)])) };
}

export function mapDecl(name: MapName): string {
  const m = MAPS[name];
  if (name === "stamp") return `type ${m.type};`;
  if (m.data === null) return `type ${m.type}; counter;`;
  return `type ${m.type} : ${m.data};${m.interval ? " flags interval;" : ""}`;
}

export const mapKind = (name: MapName) => (MAPS[name].data === null ? "set" : "map");

/** What `nft -j` reports for each base chain. */
export const BASE_CHAINS_DECL: Record<BaseChainName, { type: string; hook: string; prio: number }> = {
  mark: { type: BASE_CHAINS.mark.type, hook: BASE_CHAINS.mark.hook, prio: BASE_CHAINS.mark.prio },
  dnat: { type: BASE_CHAINS.dnat.type, hook: BASE_CHAINS.dnat.hook, prio: BASE_CHAINS.dnat.prio },
  snat: { type: BASE_CHAINS.snat.type, hook: BASE_CHAINS.snat.hook, prio: BASE_CHAINS.snat.prio },
};

export function baseChainDecl(name: BaseChainName): string {
  const c = BASE_CHAINS[name];
  return `type ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`;
}

/** Whether a desired set holds anything at all: with no farm up the table is not there. */
export function isEmpty(desired: NftDesired): boolean {
  for (const f of desired.farms.values()) if (f.rules !== null) return false;
  return true;
}

/**
 * The whole table: a declarative block for the skeleton, the chains and
 * their rules, then the elements, after the rules that look them up
 * (binding a rule to a map walks the elements already in it). What a first
 * load writes, and what a rebuild writes after `delete table`.
 */
export function renderTableBlock(desired: NftDesired): string {
  const lines: string[] = [`table ${TABLE_REF} {`];
  const farms = [...desired.farms.values()].filter((f) => f.rules !== null);
  lines.push(`\tset ${PERSIST_SET} { ${PERSIST_SET_DECL} }`);
  for (const [key, name] of Object.entries(HELPER) as [keyof typeof HELPER, string][]) lines.push(`\tchain ${name} {`, `\t\t${HELPER_RULES[key]}`, "\t}");
  for (const f of farms) {
    lines.push(`\tchain ${farmChain(f.farm)} {`);
    for (const r of f.rules!) lines.push(`\t\t${r}`);
    lines.push("\t}");
  }
  for (const name of MAP_NAMES) lines.push(`\t${mapKind(name)} ${name} {`, `\t\t${mapDecl(name)}`, "\t}");
  for (const name of Object.keys(BASE_CHAINS) as BaseChainName[]) {
    lines.push(`\tchain ${BASE_CHAIN_NAME[name]} {`, `\t\t${baseChainDecl(name)}`);
    for (const r of BASE_RULES[name]) lines.push(`\t\t${r}`);
    lines.push("\t}");
  }
  lines.push("}");
  for (const name of MAP_NAMES) {
    const elements = farms.flatMap((f) => f.elements.filter((e) => e.map === name));
    if (elements.length) lines.push(`add element ${TABLE_REF} ${name} {\n${elements.map((e) => `\t${elementText(e)}`).join(",\n")}\n}`);
  }
  return `${lines.join("\n")}\n`;
}

/** What `natfarm render --engine nftables` prints and what a first apply into an empty kernel writes. */
export function renderFullPayload(desired: NftDesired): string {
  return isEmpty(desired) ? "" : renderTableBlock(desired);
}

/** One farm's part as nft commands, for the console's "generated rules" panel. */
export function renderFarmText(farm: ResolvedFarm): string {
  const f = renderFarmNft(farm);
  if (f.rules === null) return "";
  const lines: string[] = [];
  lines.push(`add chain ${TABLE_REF} ${farmChain(f.farm)}`);
  for (const r of f.rules) lines.push(`add rule ${TABLE_REF} ${farmChain(f.farm)} ${r}`);
  for (const e of f.elements) lines.push(`add element ${TABLE_REF} ${e.map} { ${elementText(e)} }`);
  return lines.join("\n");
}

export { NFT_TABLE };
