import { formatMark } from "../farms/marks.ts";
import { effectiveShares, formatProbability, ruleProbabilities } from "../netfilter/probability.ts";
import type { Engine } from "../kernel/engine.ts";
import { eligibleBackends, renderFarmText as iptablesFarmText } from "../netfilter/render.ts";
import { renderFarmText as nftFarmText } from "../nftables/render.ts";
import { rowToResolved, type FarmRow } from "../service/farm-rows.ts";
import { diffLines, type DiffLine } from "./rule-diff.ts";

/**
 * What the farm page shows, computed on the server from the database row
 * with the engine's own functions: the shares the kernel will really give
 * (after its 31-bit rounding), each rule's probability as iptables prints
 * it, the exact rules natfarm writes, and what switching NAT type changes.
 */
export interface BackendView {
  position: number;
  ip: string;
  port: number | null;
  weight: number;
  /** 1..9, lower is better (priority scheduler). */
  priority: number;
  state: string;
  /** The health checker's last probe outcome and when (ISO), if any. */
  healthDetail: string | null;
  healthAt: string | null;
  mark: number;
  markHex: string;
  /** 0..1: the share of new connections this backend receives; null while the farm is stopped (no rule gives it any). */
  share: number | null;
  /** As in `iptables -L`: null for a backend that is not up, or of a stopped farm (it has no rule). */
  probability: string | null;
}

export interface FarmView {
  backends: BackendView[];
  rules: string;
  /** Switching to the other NAT type: the rules that appear and disappear. */
  otherMode: "nat" | "dnat";
  modeDiff: DiffLine[];
}

/** `engine`: whose lines "generated rules" shows (the console's NATFARM_ENGINE). */
export function farmView(row: FarmRow, engine: Engine = "iptables"): FarmView {
  const renderFarmText = engine === "nftables" ? nftFarmText : iptablesFarmText;
  const farm = rowToResolved(row);
  // The backends the scheduler picks from: up, and with "priority" only the best level.
  const up = eligibleBackends(farm).map(({ b, index }) => ({ b, i: index }));
  const weights = up.map(({ b }) => b.weight);
  const byWeight = farm.scheduler === "weight" || farm.scheduler === "priority";
  // Round robin and source hash split new connections (clients) evenly.
  const shares = byWeight ? effectiveShares(weights) : up.map(() => 1 / up.length);
  const probs = ruleProbabilities(weights);
  const byIndex = new Map(up.map(({ i }, k) => [i, k]));
  const ruleOf = (k: number) =>
    byWeight ? formatProbability(probs[k]!) : farm.scheduler === "roundrobin" ? `every ${up.length}th, packet ${k}` : `hash mod ${up.length} = ${k}`;
  const sorted = [...row.backends].sort((a, b) => a.position - b.position);
  // A stopped farm has no rule: showing the shares it would have had reads as if it were live.
  const stopped = farm.status === "stopped";
  const backends = farm.backends.map((b, i): BackendView => {
    const k = byIndex.get(i);
    return {
      position: sorted[i]!.position,
      ip: b.ip,
      port: b.port,
      weight: b.weight,
      priority: b.priority,
      state: b.state,
      healthDetail: sorted[i]!.healthDetail ?? null,
      healthAt: sorted[i]!.healthAt ? sorted[i]!.healthAt!.toISOString() : null,
      mark: b.mark,
      markHex: formatMark(b.mark),
      share: stopped ? null : k === undefined ? 0 : shares[k]!,
      probability: stopped || k === undefined ? null : ruleOf(k),
    };
  });
  const rules = renderFarmText(farm);
  const otherMode = farm.mode === "nat" ? "dnat" : "nat";
  // Stopped farms write nothing either way: show what the switch means once started.
  const asUp = { ...farm, status: "up" as const };
  const modeDiff = diffLines(renderFarmText(asUp), renderFarmText({ ...asUp, mode: otherMode }));
  return { backends, rules, otherMode, modeDiff };
}
