import { FarmSchema, type Farm, type FarmInput, type ResolvedFarm } from "../farms/schema.ts";
import type { Engine } from "../kernel/engine.ts";
import { renderFarmText } from "../netfilter/render.ts";
import { renderFarmText as renderNftFarmText } from "../nftables/render.ts";

/**
 * What a change did, in the operator's words: the sentence the console
 * toasts and the CLI prints, the apply log's action (naming the backend or
 * the setting), and how many of the farm's own rules appear and disappear —
 * counted as the NAT-type preview counts them, so that the toast and the
 * preview agree (the applier's own figures count every rule of a rewritten
 * shard, other farms' too).
 */
export interface RuleChange {
  added: number;
  removed: number;
}

/** The farm's rule lines ("-A CHAIN spec"; on nftables its rules and map elements) before and after, compared as multisets. */
export function ruleChange(before: ResolvedFarm | null, after: ResolvedFarm | null, engine: Engine = "iptables"): RuleChange {
  const lines = (f: ResolvedFarm | null) =>
    !f ? [] : engine === "nftables" ? renderNftFarmText(f).split("\n").filter((l) => l.startsWith("add rule ") || l.startsWith("add element ")) : renderFarmText(f).split("\n").filter((l) => l.startsWith("-A "));
  const count = new Map<string, number>();
  for (const l of lines(before)) count.set(l, (count.get(l) ?? 0) + 1);
  let added = 0;
  for (const l of lines(after)) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else added++;
  }
  let removed = 0;
  for (const n of count.values()) removed += n;
  return { added, removed };
}

export function describeRuleChange(c: RuleChange): string {
  if (c.added === 0 && c.removed === 0) return "The farm's rules did not change.";
  const rules = (n: number) => `${n} rule${n === 1 ? "" : "s"}`;
  return `${rules(c.added)} added, ${rules(c.removed)} removed.`;
}

type BackendLike = { ip: string; port?: number | null };

/** "203.0.113.10:80", or the address alone for a backend that keeps the client's port. */
export function backendName(b: BackendLike): string {
  return b.port ? `${b.ip}:${b.port}` : b.ip;
}

type Check = NonNullable<FarmInput["healthcheck"]>;

function checkText(c: Check): string {
  return `${c.type ?? "tcp"} every ${c.interval ?? 5} s`;
}

/**
 * The farm-level fields that differ, in words: "health check enabled (tcp
 * every 5 s)", "ports 80 → 80,443". Empty when nothing differs.
 */
export function settingsChanges(before: FarmInput, after: FarmInput): string[] {
  const out: string[] = [];
  for (const key of ["vip", "ports", "protocol", "mode", "scheduler", "persistence", "persistenceTtl"] as const) {
    const a = before[key];
    const b = after[key];
    if (b !== undefined && String(a ?? "") !== String(b)) out.push(`${key === "persistenceTtl" ? "persistence TTL" : key} ${a ?? "(default)"} → ${b}`);
  }
  const hcBefore = before.healthcheck;
  const hcAfter = after.healthcheck;
  if (!hcBefore && hcAfter) out.push(`health check enabled (${checkText(hcAfter)})`);
  else if (hcBefore && !hcAfter) out.push("health check disabled");
  else if (hcBefore && hcAfter && JSON.stringify(hcBefore) !== JSON.stringify(hcAfter)) out.push(`health check changed (${checkText(hcAfter)})`);
  return out;
}

/** A backend's changed fields: "weight 1 → 3", "state up → maintenance". */
export function backendChanges(before: Record<string, unknown>, patch: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ["ip", "port", "weight", "priority", "state"]) {
    if (!(key in patch)) continue;
    const a = before[key] ?? null;
    const b = patch[key] ?? null;
    if (String(a) !== String(b)) out.push(`${key} ${a ?? "client's"} → ${b ?? "client's"}`);
  }
  return out;
}

/**
 * What the checks across farms (lib/farms/schema.ts checkFarmSet: names,
 * VIP and port overlaps, VIPs on backends, marks) read of a farm. A change
 * that keeps it (a weight, a state, a priority, the mode, the scheduler, a
 * health check) cannot make a set conflict that did not: only the farm's
 * own checks have to run again.
 */
export function crossFarmKey(f: Farm): string {
  return JSON.stringify([f.name, f.vip, f.protocol, f.ports, f.backends.map((b) => [b.ip, b.mark ?? null])]);
}

/**
 * `next` checked alone when it may be (see crossFarmKey): the parsed farm,
 * its backends all keeping their marks. null: it may not, or it does not
 * parse — the whole set's check (./validation.ts) runs and reports.
 */
export function checkedAlone(before: FarmInput, next: FarmInput): ResolvedFarm | null {
  const a = FarmSchema.safeParse(before);
  const b = a.success ? FarmSchema.safeParse(next) : null;
  if (!a.success || !b?.success) return null;
  if (!b.data.backends.every((x) => x.mark !== undefined)) return null;
  return crossFarmKey(a.data) === crossFarmKey(b.data) ? (b.data as ResolvedFarm) : null;
}
