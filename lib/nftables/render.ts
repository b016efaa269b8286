import { farmPortItems, type ResolvedFarm } from "../farms/schema.ts";
import { eligibleBackends } from "../netfilter/render.ts";
import {
  BASE_CHAIN_NAME,
  BASE_CHAINS,
  backendTag,
  counterName,
  farmChain,
  farmTag,
  JHASH_SEED,
  MAP_NAMES,
  MAPS,
  mark,
  OWN_MARKS,
  persistSet,
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
  value: string;
  comment?: string;
}

export interface FarmNft {
  farm: string;
  /** Rules of the farm's chain, in order; null when the farm has no chain (stopped). */
  rules: string[] | null;
  elements: NftElement[];
  /** Named counters, one per backend: counter name → the backend's mark. */
  counters: Map<string, number>;
  /** The persistence set, when the farm has one. */
  persist: { name: string } | null;
}

export interface NftDesired {
  farms: Map<string, FarmNft>;
}

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

/** A persistent client's entry: one per client and backend, refreshed by each new connection. */
export const PERSIST_SET_DECL = "type ipv4_addr . mark; size 65535; flags dynamic,timeout;";

export function elementText(e: Pick<NftElement, "key" | "value" | "comment">): string {
  return `${e.key}${e.comment !== undefined ? ` comment ${quote(e.comment)}` : ""} : ${e.value}`;
}

/** nft's string quoting: natfarm's names and comments hold only [A-Za-z0-9_-], so plain double quotes suffice. */
export function quote(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)} for nft`);
  return `"${s}"`;
}

function markMap(pairs: [string, number][]): string {
  return `map { ${pairs.map(([k, m]) => `${k} : ${mark(m)}`).join(", ")} }`;
}

/** Values `0 .. n-1` (or weight-sized ranges) → marks: the anonymous map a numgen or jhash result indexes. */
function scheduleExpr(farm: ResolvedFarm, chosen: { b: ResolvedFarm["backends"][number] }[]): string {
  if (chosen.length === 1) return mark(chosen[0]!.b.mark);
  if (farm.scheduler === "roundrobin") return `numgen inc mod ${chosen.length} ${markMap(chosen.map(({ b }, i) => [String(i), b.mark]))}`;
  if (farm.scheduler === "sourcehash") {
    return `jhash ip saddr mod ${chosen.length} seed ${mark(JHASH_SEED)} ${markMap(chosen.map(({ b }, i) => [String(i), b.mark]))}`;
  }
  // weight and priority: Σw slots, each backend owning as many as its weight, so the shares are exact.
  let at = 0;
  const pairs: [string, number][] = chosen.map(({ b }) => {
    const from = at;
    at += b.weight;
    return [b.weight === 1 ? String(from) : `${from}-${at - 1}`, b.mark];
  });
  return `numgen random mod ${at} ${markMap(pairs)}`;
}

const rendered = new Map<string, FarmNft>();
const RENDERED_MAX = 50_000;

/** One farm's chain, elements, counters and set. Cached by the farm's JSON: a long-running console re-renders only what changed. */
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
  const out: FarmNft = { farm: farm.name, rules: null, elements: [], counters: new Map(), persist: null };
  if (farm.status !== "up") return out;
  const chain = farmChain(farm.name);
  const rules: string[] = [];
  const chosen = eligibleBackends(farm);
  const counters = farm.backends.map((b) => [mark(b.mark), counterName(farm.name, b.mark)] as const);
  const count = `counter name meta mark map { ${counters.map(([m, c]) => `${m} : ${quote(c)}`).join(", ")} }`;
  const persistent = farm.persistence === "srcip";
  if (persistent) out.persist = { name: persistSet(farm.name) };
  if (chosen.length > 0) {
    const tag = (t: string) => ` comment ${quote(farmTag(farm.name, t))}`;
    if (!persistent) {
      rules.push(`meta mark set ${scheduleExpr(farm, chosen)}${tag(farm.scheduler)}`);
      rules.push(`ct mark set meta mark ${count}`);
    } else {
      // The scheduler's choice waits in the connection mark while each backend's entry for this client may override it
      // (the last match wins, as with the iptables engine's recent lists); the final mark refreshes the client's entry.
      const set = `@${persistSet(farm.name)}`;
      rules.push(`meta mark set ${scheduleExpr(farm, chosen)} ct mark set meta mark${tag(farm.scheduler)}`);
      for (const { b, index } of chosen) {
        rules.push(`meta mark set ${mark(b.mark)} ip saddr . meta mark ${set} ct mark set meta mark comment ${quote(backendTag(farm.name, index))}`);
      }
      rules.push(`meta mark set ct mark update ${set} { ip saddr . meta mark timeout ${farm.persistenceTtl}s } ${count}`);
    }
  }
  out.rules = rules;
  for (const b of farm.backends) out.counters.set(counterName(farm.name, b.mark), b.mark);

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
    if (b.port !== null && farm.protocol !== "all") out.elements.push({ map: "dnat_port", key: mark(b.mark), value: `${b.ip} . ${b.port}`, comment });
    else out.elements.push({ map: "dnat_addr", key: mark(b.mark), value: b.ip, comment });
    if (farm.mode === "nat") out.elements.push({ map: "snat_vip", key: mark(b.mark), value: farm.vip, comment });
  });
  return out;
}

export function renderNft(farms: readonly ResolvedFarm[]): NftDesired {
  const sorted = [...farms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { farms: new Map(sorted.map((f) => [f.name, renderFarmNft(f)])) };
}

export function mapDecl(name: MapName): string {
  const m = MAPS[name];
  return `type ${m.type} : ${m.data};${m.interval ? " flags interval;" : ""}`;
}

export function baseChainDecl(name: BaseChainName): string {
  const c = BASE_CHAINS[name];
  return `type ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`;
}

/** Whether a desired set holds anything at all: with no farm up the table is not there. */
export function isEmpty(desired: NftDesired): boolean {
  for (const f of desired.farms.values()) if (f.rules !== null) return false;
  return true;
}

export interface CounterValue {
  packets: number;
  bytes: number;
}

/**
 * The whole table as one declarative block: what a first load writes, and
 * what a rebuild writes after `delete table` (carrying the counters it is
 * given, so a repair does not zero the live view).
 */
export function renderTableBlock(desired: NftDesired, counters: ReadonlyMap<string, CounterValue> = new Map()): string {
  const lines: string[] = [`table ${TABLE_REF} {`];
  const farms = [...desired.farms.values()].filter((f) => f.rules !== null);
  for (const f of farms) {
    for (const name of f.counters.keys()) {
      const c = counters.get(name);
      lines.push(`\tcounter ${name} {${c ? ` packets ${c.packets} bytes ${c.bytes}` : ""} }`);
    }
  }
  for (const f of farms) if (f.persist) lines.push(`\tset ${f.persist.name} { ${PERSIST_SET_DECL} }`);
  for (const f of farms) {
    lines.push(`\tchain ${farmChain(f.farm)} {`);
    for (const r of f.rules!) lines.push(`\t\t${r}`);
    lines.push("\t}");
  }
  for (const name of MAP_NAMES) {
    const elements = farms.flatMap((f) => f.elements.filter((e) => e.map === name));
    lines.push(`\tmap ${name} {`, `\t\t${mapDecl(name)}`);
    if (elements.length) lines.push(`\t\telements = {\n${elements.map((e) => `\t\t\t${elementText(e)}`).join(",\n")}\n\t\t}`);
    lines.push("\t}");
  }
  for (const name of Object.keys(BASE_CHAINS) as BaseChainName[]) {
    lines.push(`\tchain ${BASE_CHAIN_NAME[name]} {`, `\t\t${baseChainDecl(name)}`);
    for (const r of BASE_RULES[name]) lines.push(`\t\t${r}`);
    lines.push("\t}");
  }
  lines.push("}");
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
  for (const name of f.counters.keys()) lines.push(`add counter ${TABLE_REF} ${name}`);
  if (f.persist) lines.push(`add set ${TABLE_REF} ${f.persist.name} { ${PERSIST_SET_DECL} }`);
  lines.push(`add chain ${TABLE_REF} ${farmChain(f.farm)}`);
  for (const r of f.rules) lines.push(`add rule ${TABLE_REF} ${farmChain(f.farm)} ${r}`);
  for (const e of f.elements) lines.push(`add element ${TABLE_REF} ${e.map} { ${elementText(e)} }`);
  return lines.join("\n");
}

export { NFT_TABLE };
