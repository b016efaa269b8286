import { FarmSchema, type ResolvedFarm } from "../farms/schema.ts";
import type { Engine } from "../kernel/engine.ts";
import { renderFarmText } from "../netfilter/render.ts";
import { renderFarmText as renderNftFarmText } from "../nftables/render.ts";
import type { ConfigFarm } from "./config-history.ts";
import { backendName, settingsChanges } from "./farm-change.ts";

/**
 * Two configurations side by side, in the operator's words and as line
 * diffs: of each farm's file-format JSON and of the rules the engine
 * renders for it. Pure: the History page, the revert confirmation, the CLI
 * and the API all print these.
 */
export interface DiffLine {
  op: " " | "+" | "-";
  line: string;
}

export interface FarmDiff {
  farm: string;
  /** "created", "deleted" or "changed" */
  kind: "created" | "deleted" | "changed";
  /** One line: "farm web: backend 203.0.113.10:80 weight 1 → 3". */
  words: string;
  json: DiffLine[];
  rules: DiffLine[];
}

/** Longest-common-subsequence diff; farms are small (a few hundred lines at most). */
export function lineDiff(a: string[], b: string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: " ", line: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: "-", line: a[i++]! });
    else out.push({ op: "+", line: b[j++]! });
  }
  while (i < n) out.push({ op: "-", line: a[i++]! });
  while (j < m) out.push({ op: "+", line: b[j++]! });
  return out;
}

/** The rendered rule lines of a configuration farm ("-A CHAIN spec"; nftables: its rules and map elements). */
export function farmRuleLines(f: ConfigFarm | null, engine: Engine = "iptables"): string[] {
  if (!f) return [];
  const parsed = FarmSchema.safeParse(f);
  if (!parsed.success) return [];
  const farm = parsed.data as ResolvedFarm;
  if (engine === "nftables") return renderNftFarmText(farm).split("\n").filter((l) => l.startsWith("add rule ") || l.startsWith("add element "));
  return renderFarmText(farm).split("\n").filter((l) => l.startsWith("*") || l.startsWith("-A "));
}

const jsonLines = (f: ConfigFarm | null) => (f ? JSON.stringify(f, null, 2).split("\n") : []);

type ConfigBackend = ConfigFarm["backends"][number];

function backendWords(before: ConfigBackend[], after: ConfigBackend[]): string[] {
  const out: string[] = [];
  const key = (b: ConfigBackend) => b.mark ?? backendName({ ip: b.ip, port: b.port ?? null });
  const was = new Map(before.map((b) => [key(b), b]));
  const now = new Map(after.map((b) => [key(b), b]));
  for (const [k, b] of now) {
    const old = was.get(k);
    const who = backendName({ ip: b.ip, port: b.port ?? null });
    if (!old) {
      out.push(`backend ${who} added (weight ${b.weight})`);
      continue;
    }
    const oldWho = backendName({ ip: old.ip, port: old.port ?? null });
    const fields: string[] = [];
    if (oldWho !== who) fields.push(`address ${oldWho} → ${who}`);
    for (const f of ["weight", "priority"] as const) if ((old[f] ?? 1) !== (b[f] ?? 1)) fields.push(`${f} ${old[f] ?? 1} → ${b[f] ?? 1}`);
    if ((old.state ?? "up") !== (b.state ?? "up")) fields.push(`state ${old.state ?? "up"} → ${b.state ?? "up"}`);
    if (fields.length) out.push(`backend ${oldWho} ${fields.join(", ")}`);
  }
  for (const [k, b] of was) if (!now.has(k)) out.push(`backend ${backendName({ ip: b.ip, port: b.port ?? null })} removed`);
  return out;
}

/** What turning `before` into `after` does to one farm, in one line. */
export function describeFarmChange(before: ConfigFarm | null, after: ConfigFarm | null): string {
  if (!before && after) {
    const n = after.backends.length;
    return `farm ${after.name} created (${after.vip}:${after.ports} ${after.protocol}, ${n} backend${n === 1 ? "" : "s"})`;
  }
  if (before && !after) return `farm ${before.name} deleted`;
  if (!before || !after) return "";
  const parts: string[] = [];
  if ((before.status ?? "up") !== (after.status ?? "up")) parts.push((after.status ?? "up") === "up" ? "started" : "stopped");
  parts.push(...settingsChanges(before as never, after as never));
  parts.push(...backendWords(before.backends, after.backends));
  return `farm ${after.name}: ${parts.length ? parts.join("; ") : "changed"}`;
}

/** Every farm that differs between two configurations, by name. */
export function compareConfigs(a: ConfigFarm[], b: ConfigFarm[], engine: Engine = "iptables"): FarmDiff[] {
  const was = new Map(a.map((f) => [f.name, f]));
  const now = new Map(b.map((f) => [f.name, f]));
  const names = [...new Set([...was.keys(), ...now.keys()])].sort();
  const out: FarmDiff[] = [];
  for (const name of names) {
    const x = was.get(name) ?? null;
    const y = now.get(name) ?? null;
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    out.push({
      farm: name,
      kind: !x ? "created" : !y ? "deleted" : "changed",
      words: describeFarmChange(x, y),
      json: lineDiff(jsonLines(x), jsonLines(y)),
      rules: lineDiff(farmRuleLines(x, engine), farmRuleLines(y, engine)),
    });
  }
  return out;
}

/** A unified-diff-like text of a comparison (the CLI's and the API's text form). */
export function diffText(diffs: FarmDiff[], opts: { rules?: boolean } = {}): string {
  const out: string[] = [];
  for (const d of diffs) {
    out.push(`# ${d.words}`);
    for (const l of d.json) out.push(`${l.op} ${l.line}`);
    if (opts.rules !== false && d.rules.some((l) => l.op !== " ")) {
      out.push(`# rules of farm ${d.farm}`);
      for (const l of d.rules) if (l.op !== " ") out.push(`${l.op} ${l.line}`);
    }
  }
  return out.join("\n");
}
