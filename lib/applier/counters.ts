import { CHAIN_PREFIX } from "../netfilter/layout.ts";
import { parseSave } from "../netfilter/parse.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";
import type { TablesSnapshot } from "./tables.ts";

/**
 * natfarm's translation counters alone, for the traffic sampler (every 10 s):
 * the DNAT rules of the nat mark blocks, the only rules that count a new
 * connection once per backend (lib/service/traffic-counters.ts). A full read
 * parses mangle's 5,000 farm chains and the nat SNAT tree as well, and ships
 * all of it through the agent's socket to be thrown away; this reads nat
 * only, picks the DNAT lines out of the save text before parsing anything,
 * and answers a snapshot of those rules, with the same counters.
 */
// Any owned chain's DNAT rule, as the sampler's countersOf takes them (they all sit in the DST mark blocks today).
const OWNED_RULE = `-A ${CHAIN_PREFIX}`;

/** The DNAT lines of a nat save, as a snapshot shaped like readTables' (table nat only, DNAT rules only). */
export function translationSnapshot(saveText: string, at = new Date().toISOString()): TablesSnapshot {
  // A line scan first: at 5,000 farms the save holds ~40,000 lines and a few thousand are wanted.
  const kept: string[] = ["*nat"];
  let at0 = 0;
  let inNat = false;
  while (at0 < saveText.length) {
    let end = saveText.indexOf("\n", at0);
    if (end === -1) end = saveText.length;
    const line = saveText.slice(at0, end);
    at0 = end + 1;
    if (line.charCodeAt(0) === 42 /* * */) {
      inNat = line.trimEnd() === "*nat";
      continue;
    }
    if (!inNat || line.charCodeAt(0) !== 91 /* [ */) continue;
    const a = line.indexOf("] ");
    if (a === -1 || !line.startsWith(OWNED_RULE, a + 2) || !line.includes(" -j DNAT")) continue;
    kept.push(line);
  }
  kept.push("COMMIT");
  const nat = parseSave(kept.join("\n"), new Set(["nat"])).get("nat");
  const chains = [...(nat?.chains.values() ?? [])].map((c) => ({
    name: c.name,
    policy: null,
    owned: c.owned,
    rules: c.rules.map((r) => ({ spec: r.spec, packets: r.packets, bytes: r.bytes, target: r.target, comment: r.comment, owned: r.owned, farm: r.farm ?? null, backend: r.backend ?? null })),
  }));
  return { at, tables: [{ name: "nat", chains }] };
}

/** One `iptables-save -c -t nat`, reduced to natfarm's DNAT rules with their counters. */
export async function readTranslationCounters(target: Target, timeoutMs = 30_000, run: Runner = runPrivileged): Promise<TablesSnapshot> {
  const { stdout } = await run("iptables-save", ["-c", "-t", "nat"], { target, timeoutMs });
  return translationSnapshot(stdout);
}
