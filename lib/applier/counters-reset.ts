import { farmChain, TABLES, type Table } from "../netfilter/layout.ts";
import { describeRule, type LiveChain } from "../netfilter/parse.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";
import { ApplyError } from "./errors.ts";
import { withTargetLock } from "./lock.ts";
import { readSaves, viewFromSave } from "./read.ts";
import { readScoped } from "./scoped.ts";

/**
 * Zeroing natfarm's own counters in the iptables engine: one
 * `iptables-restore --noflush` of `-Z` lines, taken under the target lock
 * so it never meets an apply half-way. Only NATFARM-* chains are named.
 * A built-in chain is never zeroed: `-Z PREROUTING` would zero every other
 * program's rules in it too, so natfarm's jumps from the built-in chains
 * keep their counts (the operator is told so).
 *
 * Scope "one farm": its own mangle chain whole, and in the shared chains
 * (the dispatch tree's nodes, nat's mark blocks) only the rules that carry
 * its comment, by number — numbers read under the same lock, so no natfarm
 * writer can move them before the restore runs. A farm's chains are
 * listed one by one (its chain, the mark blocks of its backends, the
 * dispatch nodes on its path: what the live tables page reads for a farm),
 * not both whole tables: that stays fast however many farms there are.
 */
export interface CountersResetOptions {
  target: Target;
  /** Only this farm's rules; absent: every natfarm chain. */
  farm?: string;
  timeoutMs?: number;
  runner?: Runner;
  /** Test hook: a `-Z` of a chain that does not exist in the first section, which iptables refuses. */
  injectFault?: boolean;
}

export interface CountersResetResult {
  engine: "iptables" | "nftables";
  scope: { farm: string | null };
  /** Chains zeroed whole. */
  chains: number;
  /** Counters zeroed (rules, or nft set elements), including those of the chains zeroed whole. */
  counters: number;
  /** What those counters held just before: what the reset took away. */
  packets: number;
  bytes: number;
  payload: string;
  durationMs: number;
}

export const INJECTED_RESET_FAULT = "-Z NATFARM-INJECTED-FAULT";

/** The `-Z` lines per table for this scope, from one read of both tables. Pure. */
export function resetPayload(saveTexts: readonly string[], farm: string | null, injectFault = false): Omit<CountersResetResult, "engine" | "scope" | "durationMs"> {
  return resetPayloadOf(viewFromSave(saveTexts).owned.values(), farm, injectFault);
}

/** The same from natfarm's chains as read (a full read, or one farm's chains listed one by one). Pure. */
export function resetPayloadOf(owned: Iterable<LiveChain>, farm: string | null, injectFault = false): Omit<CountersResetResult, "engine" | "scope" | "durationMs"> {
  const lines = new Map<Table, string[]>(TABLES.map((t) => [t, []]));
  let chains = 0;
  let counters = 0;
  let packets = 0;
  let bytes = 0;
  const own = farm === null ? null : farmChain(farm);
  for (const chain of owned) {
    const table = chain.table as Table;
    if (!lines.has(table)) continue;
    if (farm === null || chain.name === own) {
      lines.get(table)!.push(`-Z ${chain.name}`);
      chains++;
      counters += chain.rules.length;
      for (const r of chain.rules) {
        packets += r.packets;
        bytes += r.bytes;
      }
      continue;
    }
    chain.rules.forEach((r, i) => {
      const owner = r.farm ?? describeRule(table, chain.name, r.spec, 0, 0).farm;
      if (owner !== farm) return;
      lines.get(table)!.push(`-Z ${chain.name} ${i + 1}`);
      counters++;
      packets += r.packets;
      bytes += r.bytes;
    });
  }
  const sections: string[] = [];
  let first = true;
  for (const table of TABLES) {
    const body = lines.get(table)!;
    if (injectFault && first) body.push(INJECTED_RESET_FAULT);
    if (body.length === 0) continue;
    first = false;
    sections.push(`*${table}\n${body.join("\n")}\nCOMMIT\n`);
  }
  return { chains, counters, packets, bytes, payload: sections.join("") };
}

export async function resetIptablesCounters(opts: CountersResetOptions): Promise<CountersResetResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const run = opts.runner ?? runPrivileged;
  return withTargetLock(opts.target, timeoutMs, async (lock) => {
    const started = performance.now();
    const farm = opts.farm ?? null;
    const scoped = farm === null ? null : await readScoped(opts.target, [], new Set([farm]), timeoutMs, run);
    const plan = scoped ? resetPayloadOf(scoped.owned.values(), farm, Boolean(opts.injectFault)) : resetPayload(await readSaves(opts.target, timeoutMs, run), farm, Boolean(opts.injectFault));
    if (plan.payload !== "") {
      const r = await run("iptables-restore", ["--noflush", "-w", "10"], { target: opts.target, input: plan.payload, timeoutMs, allowFailure: true, holdFd: lock.fd });
      if (r.exitCode !== 0) {
        // iptables commits each table's section on its own: a refusal in the first (mangle) section
        // commits nothing; the payload names mangle's chains first, so a refusal in nat is said as such.
        const message = r.stderr.trim() || `iptables-restore exited with code ${r.exitCode}`;
        const line = /line (\d+) failed/.exec(message);
        const failedAt = line ? Number(line[1]) : 1;
        const mangleEnd = plan.payload.startsWith("*mangle") ? plan.payload.split("\n").indexOf("COMMIT") + 1 : 0;
        const e = new ApplyError(message, failedAt > mangleEnd ? "rollback-failed" : "nothing-committed", plan.payload);
        e.message =
          failedAt > mangleEnd
            ? `iptables refused the counter reset in nat (${message}): natfarm's mangle counters were reset, its nat counters were not`
            : `iptables refused the counter reset (${message}): no counter was reset`;
        throw e;
      }
    }
    return { engine: "iptables", scope: { farm: opts.farm ?? null }, ...plan, durationMs: performance.now() - started };
  });
}
