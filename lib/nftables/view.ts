import type { DriftReport, FarmDrift, FarmRuleDrift } from "../applier/drift.ts";
import type { TablesChain, TablesRule, TablesSnapshot } from "../applier/tables.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import type { LiveNft } from "./json.ts";
import { farmChain, farmOfChain, MAP_NAMES, parseTag, TABLE_REF, type MapName } from "./layout.ts";
import { elementFarm, liveFarms, skeleton } from "./plan.ts";
import { elementText, renderFarmNft, type FarmNft, type NftElement } from "./render.ts";

/**
 * natfarm's nftables table in the shapes the console, the CLI and the API
 * already show for the iptables engine: per-farm drift as `missing` /
 * `unexpected` lines, and the live table as a TablesSnapshot whose "chains"
 * are the table's chains and its maps (each element a row, linked to its
 * farm by the chain it goes to or its FARM_ comment, the `backends` set's
 * elements with their counters). Pure: the caller reads the kernel.
 */
export const NFT_SNAPSHOT_TABLE = `nftables ${TABLE_REF}`;

const ruleLine = (chain: string, text: string) => `chain ${chain} ${text}`;
const elementLine = (map: MapName, e: Pick<NftElement, "key" | "value" | "comment">) => `element ${map} ${elementText(e)}`;

function wantedLines(f: FarmNft): { rules: string[]; elements: string[] } {
  const chain = farmChain(f.farm);
  return { rules: (f.rules ?? []).map((r) => ruleLine(chain, r)), elements: f.elements.map((e) => elementLine(e.map, e)) };
}

/** Drift of each farm against one read of the table (the iptables engine's FarmRuleDrift, in nft lines). */
export function nftDriftOfFarms(live: LiveNft, farms: readonly ResolvedFarm[]): Map<string, FarmRuleDrift> {
  const { farms: held } = liveFarms(live);
  const sk = live.exists ? skeleton(live) : null;
  const skeletonProblem = !live.exists
    ? `table ${TABLE_REF} is missing: no packet reaches the farm's rules`
    : !sk!.ok
      ? `natfarm's table is damaged (${sk!.why}): no packet may reach the farm's rules`
      : sk!.fixes.length > 0
        ? `natfarm's base chains or maps are not as natfarm wrote them (${sk!.fixes[0]}…): packets may not reach the farm's rules`
        : null;
  const out = new Map<string, FarmRuleDrift>();
  for (const farm of farms) {
    const want = wantedLines(renderFarmNft(farm));
    const have = held.get(farm.name);
    const haveRules = have?.chain ? have.chain.rules.map((r) => ruleLine(have.chain!.name, r.text)) : [];
    const haveElements = [...(have?.elements.values() ?? [])].map((e) => elementLine(e.map, e));
    const missing: string[] = [];
    const unexpected: string[] = [];
    // A chain's rules count in order (the last persistence match wins); elements are a set.
    if (want.rules.length !== haveRules.length || want.rules.some((r, i) => r !== haveRules[i])) {
      const hs = new Set(haveRules);
      const ws = new Set(want.rules);
      const gone = want.rules.filter((r) => !hs.has(r));
      const extra = haveRules.filter((r) => !ws.has(r));
      if (gone.length === 0 && extra.length === 0) {
        missing.push(...want.rules);
        unexpected.push(...haveRules);
      } else {
        missing.push(...gone);
        unexpected.push(...extra);
      }
    }
    const he = new Set(haveElements);
    const we = new Set(want.elements);
    missing.push(...want.elements.filter((e) => !he.has(e)));
    unexpected.push(...haveElements.filter((e) => !we.has(e)));
    if (farm.status === "up" && skeletonProblem) missing.push(skeletonProblem);
    out.set(farm.name, { inSync: missing.length === 0 && unexpected.length === 0, missing, unexpected });
  }
  return out;
}

/** The report `natfarm diff` and the API give, from one read; `plan` is the applier's verdict and payload for the same farms. */
export function nftDriftReport(live: LiveNft, farms: readonly ResolvedFarm[], plan: { inSync: boolean; payload: string }): DriftReport {
  const byFarm = nftDriftOfFarms(live, farms);
  const { farms: held, stray, strayChains } = liveFarms(live);
  const wanted = new Set(farms.map((f) => f.name));
  const strayLines: string[] = [];
  for (const [name, f] of held) {
    if (wanted.has(name)) continue;
    if (f.chain) strayLines.push(...(f.chain.rules.length ? f.chain.rules.map((r) => ruleLine(f.chain!.name, r.text)) : [`chain ${f.chain.name}`]));
    for (const e of f.elements.values()) strayLines.push(elementLine(e.map, e));
  }
  strayLines.push(...stray.map((e) => elementLine(e.map, e)), ...strayChains.map((c) => `chain ${c}`));
  const report = farms.map((f): FarmDrift => {
    const d = byFarm.get(f.name)!;
    return { farm: f.name, status: d.inSync ? "in-sync" : held.has(f.name) ? "differs" : "missing", ...d };
  });
  return { inSync: plan.inSync, farms: report, stray: strayLines, payload: plan.payload };
}

function farmRule(spec: string, farm: string | null, backend: number | null, counter?: { packets: number; bytes: number }, target: string | null = null): TablesRule {
  return { spec, packets: counter?.packets ?? 0, bytes: counter?.bytes ?? 0, target, comment: null, owned: true, farm, backend };
}

/**
 * The table as the live tables page lists it. `farm`: only what belongs to
 * that farm (its chain, its elements). nft keeps counters on the `backends`
 * set's elements (one per backend: new connections given its mark), not on
 * rules: the rules show 0.
 */
export function nftSnapshot(live: LiveNft, opts: { farm?: string; at?: string } = {}): TablesSnapshot {
  const only = opts.farm;
  const chains: TablesChain[] = [];
  for (const c of live.chains.values()) {
    const farm = farmOfChain(c.name);
    if (only && farm !== only) continue;
    chains.push({
      name: c.base ? `${c.name} (${c.base.type} ${c.base.hook} priority ${c.base.prio})` : c.name,
      policy: c.base ? c.base.policy : null,
      owned: true,
      rules: c.rules.map((r) => {
        const tag = /comment "([^"]+)"$/.exec(r.text);
        const t = /(?:jump|goto) (\S+)/.exec(r.text);
        return { ...farmRule(r.text, farm, tag ? (parseTag(tag[1])?.backend ?? null) : null, undefined, t ? t[1]! : null), comment: tag ? tag[1]! : null };
      }),
    });
  }
  for (const map of [...MAP_NAMES, "persist"] as const) {
    const s = live.sets.get(map);
    if (!s) continue;
    const rules: TablesRule[] = [];
    for (const e of s.elements) {
      const farm = map === "persist" ? null : elementFarm(map as MapName, e);
      if (only && farm !== only) continue;
      const tag = parseTag(e.comment);
      const target = e.value && /^(?:goto|jump) (\S+)$/.exec(e.value);
      rules.push({ ...farmRule(elementText(e), farm, tag?.backend ?? null, e.counter, target ? target[1]! : null), comment: e.comment ?? null });
    }
    if (only && rules.length === 0) continue;
    chains.push({ name: `${s.kind} ${s.name} (${s.type}${s.data ? ` : ${s.data}` : ""})`, policy: null, owned: true, rules });
  }
  return { at: opts.at ?? new Date().toISOString(), tables: live.exists ? [{ name: NFT_SNAPSHOT_TABLE, chains }] : [{ name: NFT_SNAPSHOT_TABLE, chains: [] }] };
}
