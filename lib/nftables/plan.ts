import { backendKey } from "../farms/marks.ts";
import type { LiveNft, LiveNftChain } from "./json.ts";
import { BASE_CHAIN_NAME, BASE_CHAINS, farmChain, farmOfChain, MAP_NAMES, MAPS, mark, parseTag, TABLE_REF, type BaseChainName, type MapName } from "./layout.ts";
import {
  BASE_RULES,
  baseChainDecl,
  elementText,
  HELPER,
  HELPER_RULES,
  isEmpty,
  mapDecl,
  mapKind,
  PERSIST_SET_DECL,
  renderTableBlock,
  type FarmNft,
  type NftDesired,
  type NftElement,
} from "./render.ts";
import { PERSIST_SET } from "./layout.ts";

/**
 * Desired vs live → one `nft -f` transaction. Only what differs is written:
 * a farm whose chain differs gets `flush chain` and its rules again, an
 * element that differs is deleted and added, everything else (other farms'
 * chains, elements and their counters, persistent clients) is not touched.
 * An unchanged set of farms plans nothing at all. The skeleton (base and
 * helper chains, maps) is repaired piece by piece; only a map of the wrong
 * type, which nft cannot change in place, makes the table be rebuilt.
 */
export interface NftPlanStats {
  chainsAdded: number;
  chainsRewritten: number;
  chainsRemoved: number;
  elementsAdded: number;
  elementsRemoved: number;
  rebuilt: boolean;
}

export interface NftPlan {
  empty: boolean;
  /** The commands, without the stamp (which the applier adds when it writes). */
  commands: string[];
  stats: NftPlanStats;
  farmsChanged: string[];
  /** The table must be created (it is absent) or rebuilt: the commands are a whole-table load. */
  whole: "create" | "rebuild" | null;
}

const HELPER_CHAINS = new Map<string, string>(Object.entries(HELPER).map(([k, name]) => [name, HELPER_RULES[k as keyof typeof HELPER]]));
const BASE_BY_NAME = new Map<string, BaseChainName>(Object.entries(BASE_CHAIN_NAME).map(([k, v]) => [v, k as BaseChainName]));

/** The farm a live element belongs to: dispatch elements by the chain they go to, the others by their FARM_ comment. */
export function elementFarm(map: MapName, e: { value: string | null; comment?: string }): string | null {
  if (map === "dispatch" || map === "dispatch_all") {
    const m = /^goto (\S+)$/.exec(e.value ?? "");
    return m ? farmOfChain(m[1]!) : null;
  }
  return parseTag(e.comment)?.farm ?? null;
}

const elemId = (map: string, key: string) => `${map}\u0000${key}`;

interface LiveFarm {
  chain: LiveNftChain | null;
  elements: Map<string, NftElement>;
}

/** The live table per farm. */
export function liveFarms(live: LiveNft): { farms: Map<string, LiveFarm>; stray: NftElement[]; strayChains: string[] } {
  const farms = new Map<string, LiveFarm>();
  const get = (name: string) => {
    let f = farms.get(name);
    if (!f) farms.set(name, (f = { chain: null, elements: new Map() }));
    return f;
  };
  const strayChains: string[] = [];
  for (const chain of live.chains.values()) {
    const farm = farmOfChain(chain.name);
    if (farm !== null) get(farm).chain = chain;
    else if (!HELPER_CHAINS.has(chain.name) && !BASE_BY_NAME.has(chain.name)) strayChains.push(chain.name);
  }
  const stray: NftElement[] = [];
  for (const map of MAP_NAMES) {
    if (map === "stamp") continue;
    for (const e of live.sets.get(map)?.elements ?? []) {
      const el: NftElement = { map, key: e.key, value: e.value, ...(e.comment !== undefined ? { comment: e.comment } : {}) };
      const farm = elementFarm(map, e);
      if (farm === null) stray.push(el);
      else get(farm).elements.set(elemId(map, e.key), el);
    }
  }
  return { farms, stray, strayChains };
}

/** The marks the kernel gives backends (from the translation maps), so a backend keeps its mark across applies. */
export function marksInNft(live: LiveNft): Map<string, number> {
  const known = new Map<string, number>();
  for (const map of ["dnat_port", "dnat_addr"] as const) {
    for (const e of live.sets.get(map)?.elements ?? []) {
      const tag = parseTag(e.comment);
      if (!tag || e.value === null) continue;
      const [ip, port] = e.value.split(" . ");
      known.set(backendKey(tag.farm, ip!, port !== undefined ? Number(port) : null), Number(e.key));
    }
  }
  return known;
}

type SkeletonState = { ok: true; fixes: string[] } | { ok: false; why: string };

export function skeleton(live: LiveNft): SkeletonState {
  const fixes: string[] = [];
  for (const name of MAP_NAMES) {
    const s = live.sets.get(name);
    const m = MAPS[name];
    if (!s) {
      fixes.push(`add ${mapKind(name)} ${TABLE_REF} ${name} { ${mapDecl(name)} }`);
      continue;
    }
    if (s.type !== m.type || s.data !== m.data || s.flags.includes("interval") !== m.interval) return { ok: false, why: `${mapKind(name)} ${name} is "${s.type}${s.data ? ` : ${s.data}` : ""}"` };
  }
  const persist = live.sets.get(PERSIST_SET);
  if (!persist) fixes.push(`add set ${TABLE_REF} ${PERSIST_SET} { ${PERSIST_SET_DECL} }`);
  else if (persist.type !== "ipv4_addr . mark" || persist.data !== null || !persist.flags.includes("timeout")) return { ok: false, why: `set ${PERSIST_SET} is "${persist.type}"` };
  for (const [name, rule] of HELPER_CHAINS) {
    const c = live.chains.get(name);
    if (!c) fixes.push(`add chain ${TABLE_REF} ${name}`, `add rule ${TABLE_REF} ${name} ${rule}`);
    else if (c.base || c.rules.length !== 1 || c.rules[0]!.text !== rule) {
      if (c.base) return { ok: false, why: `chain ${name} is a base chain` };
      fixes.push(`flush chain ${TABLE_REF} ${name}`, `add rule ${TABLE_REF} ${name} ${rule}`);
    }
  }
  for (const key of Object.keys(BASE_CHAINS) as BaseChainName[]) {
    const name = BASE_CHAIN_NAME[key];
    const want = BASE_CHAINS[key];
    const c = live.chains.get(name);
    const rules = BASE_RULES[key].map((r) => `add rule ${TABLE_REF} ${name} ${r}`);
    const create = [`add chain ${TABLE_REF} ${name} { ${baseChainDecl(key)} }`, ...rules];
    if (!c) fixes.push(...create);
    else if (!c.base || c.base.type !== want.type || c.base.hook !== want.hook || c.base.prio !== want.prio || c.base.policy !== "accept") {
      fixes.push(`flush chain ${TABLE_REF} ${name}`, `delete chain ${TABLE_REF} ${name}`, ...create);
    } else if (c.rules.length !== BASE_RULES[key].length || c.rules.some((r, i) => r.text !== BASE_RULES[key][i])) {
      fixes.push(`flush chain ${TABLE_REF} ${name}`, ...rules);
    }
  }
  return { ok: true, fixes };
}

const sameElement = (a: NftElement, b: NftElement) => a.value === b.value && a.comment === b.comment;

/**
 * `only`: the farms this change is about; the others keep exactly what the
 * kernel has for them (a farm held as pending is never made live as a side
 * effect), and stray elements and chains are left for a full apply to clear.
 */
export function planNft(desired: NftDesired, live: LiveNft, opts: { only?: ReadonlySet<string> } = {}): NftPlan {
  const stats: NftPlanStats = { chainsAdded: 0, chainsRewritten: 0, chainsRemoved: 0, elementsAdded: 0, elementsRemoved: 0, rebuilt: false };
  const only = opts.only ?? null;
  const wantNothing = isEmpty(desired);
  if (!live.exists) {
    if (wantNothing) return { empty: true, commands: [], stats, farmsChanged: [], whole: null };
    const farmsChanged = [...desired.farms.values()].filter((f) => f.rules !== null && (!only || only.has(f.farm))).map((f) => f.farm);
    const scoped: NftDesired = only ? { farms: new Map([...desired.farms].filter(([n]) => only.has(n))) } : desired;
    countWhole(scoped, stats);
    return { empty: false, commands: [renderTableBlock(scoped)], stats, farmsChanged, whole: "create" };
  }
  const { farms: held, stray, strayChains } = liveFarms(live);
  if (!only && wantNothing) {
    for (const f of held.values()) stats.elementsRemoved += f.elements.size;
    stats.chainsRemoved = [...held.values()].filter((f) => f.chain).length;
    return { empty: false, commands: [`delete table ${TABLE_REF}`], stats, farmsChanged: [...held.keys()].sort(), whole: null };
  }
  const sk = skeleton(live);
  if (!sk.ok) {
    if (only) throw new Error(`natfarm's nftables table is damaged (${sk.why}): a full apply rebuilds it`);
    countWhole(desired, stats);
    stats.rebuilt = true;
    return { empty: false, commands: [`delete table ${TABLE_REF}`, renderTableBlock(desired)], stats, farmsChanged: [...new Set([...held.keys(), ...desired.farms.keys()])].sort(), whole: "rebuild" };
  }

  const newChains: string[] = [];
  const chainRules: string[] = [];
  const dropElements = new Map<MapName, string[]>();
  const addElements = new Map<MapName, NftElement[]>();
  const dropChains: string[] = [];
  const changed = new Set<string>();
  const names = new Set<string>([...desired.farms.keys(), ...held.keys()]);
  for (const name of [...names].sort()) {
    if (only && !only.has(name)) continue;
    const want: FarmNft = desired.farms.get(name) ?? { farm: name, rules: null, elements: [] };
    const have = held.get(name) ?? { chain: null, elements: new Map<string, NftElement>() };
    const chain = farmChain(name);
    if (want.rules !== null) {
      const same = have.chain !== null && have.chain.rules.length === want.rules.length && have.chain.rules.every((r, i) => r.text === want.rules![i]);
      if (!same) {
        changed.add(name);
        if (have.chain === null) {
          newChains.push(`add chain ${TABLE_REF} ${chain}`);
          stats.chainsAdded++;
        } else {
          chainRules.push(`flush chain ${TABLE_REF} ${chain}`);
          stats.chainsRewritten++;
        }
        for (const r of want.rules) chainRules.push(`add rule ${TABLE_REF} ${chain} ${r}`);
      }
    } else if (have.chain !== null) {
      changed.add(name);
      dropChains.push(`flush chain ${TABLE_REF} ${chain}`, `delete chain ${TABLE_REF} ${chain}`);
      stats.chainsRemoved++;
    }
    const wanted = new Map(want.elements.map((e) => [elemId(e.map, e.key), e]));
    for (const [id, e] of have.elements) {
      const w = wanted.get(id);
      if (w && sameElement(w, e)) continue;
      changed.add(name);
      push(dropElements, e.map, e.key);
    }
    for (const [id, e] of wanted) {
      const h = have.elements.get(id);
      if (h && sameElement(h, e)) continue;
      changed.add(name);
      push(addElements, e.map, e);
    }
  }
  if (!only) {
    for (const e of stray) push(dropElements, e.map, e.key);
    for (const c of strayChains) dropChains.push(`flush chain ${TABLE_REF} ${c}`, `delete chain ${TABLE_REF} ${c}`);
  }
  const commands = [...sk.fixes, ...newChains, ...chainRules];
  for (const map of MAP_NAMES) {
    const keys = dropElements.get(map);
    if (keys?.length) {
      commands.push(`delete element ${TABLE_REF} ${map} { ${keys.join(", ")} }`);
      stats.elementsRemoved += keys.length;
    }
  }
  for (const map of MAP_NAMES) {
    const els = addElements.get(map);
    if (els?.length) {
      commands.push(`add element ${TABLE_REF} ${map} { ${els.map(elementText).join(", ")} }`);
      stats.elementsAdded += els.length;
    }
  }
  commands.push(...dropChains);
  return { empty: commands.length === 0, commands, stats, farmsChanged: [...changed].sort(), whole: null };
}

function push<T>(m: Map<MapName, T[]>, k: MapName, v: T): void {
  let list = m.get(k);
  if (!list) m.set(k, (list = []));
  list.push(v);
}

function countWhole(desired: NftDesired, stats: NftPlanStats): void {
  for (const f of desired.farms.values()) {
    if (f.rules === null) continue;
    stats.chainsAdded++;
    stats.elementsAdded += f.elements.length;
  }
}

/** The payload: the plan's commands, then the stamp swap that makes a transaction planned from a stale state fail. */
export function payloadOf(plan: NftPlan, stamp: { old: number | null; next: number }): string {
  if (plan.empty) return "";
  const lines = [...plan.commands];
  if (plan.whole === null && !plan.commands.includes(`delete table ${TABLE_REF}`)) {
    if (stamp.old !== null) lines.push(`delete element ${TABLE_REF} stamp { ${mark(stamp.old)} }`);
    lines.push(`add element ${TABLE_REF} stamp { ${mark(stamp.next)} }`);
  } else if (plan.whole !== null) {
    lines.push(`add element ${TABLE_REF} stamp { ${mark(stamp.next)} }`);
  }
  return `${lines.join("\n")}\n`;
}
