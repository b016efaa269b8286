import type { CountersResetOptions, CountersResetResult } from "../applier/counters-reset.ts";
import { withTargetLock } from "../applier/lock.ts";
import type { Runner } from "../privileged/run.ts";
import { INJECTED_FAULT, NftApplyError, nftRunner, readNftSet, stampOf } from "./apply.ts";
import type { LiveNft } from "./json.ts";
import { mark, TABLE_REF } from "./layout.ts";
import { elementFarm } from "./plan.ts";
import { elementText } from "./render.ts";

/**
 * Zeroing natfarm's own counters in the nftables engine. nft 1.0.6 (Debian
 * 12) has `reset counters` for named counter objects only — no `reset
 * rules`, no `reset element` — and natfarm's counters are the `backends`
 * set's elements (its rules carry none: see layout.ts). So each element in
 * scope is deleted and added again, with its comment, in ONE `nft -f`
 * transaction: a new element starts at 0, and no packet ever sees the set
 * without it (the kernel switches the whole batch at once). Nothing else is
 * written: the farms' chains, the maps, the `persist` set of persistent
 * clients (dynamic, with their timeouts) stay as they are. The stamp is
 * deleted and added back unchanged, so the transaction is refused if another
 * natfarm writer changed the table since this read, and what the applier
 * remembers of the table (lib/nftables/apply.ts) stays true. Only those
 * two sets are read (`nft list set`), not the whole table.
 */
export function nftResetPayload(live: LiveNft, farm: string | null, injectFault = false): Omit<CountersResetResult, "engine" | "scope" | "durationMs"> {
  const set = live.sets.get("backends");
  const chosen = (set?.elements ?? []).filter((e) => farm === null || elementFarm("backends", e) === farm);
  let packets = 0;
  let bytes = 0;
  for (const e of chosen) {
    packets += e.counter?.packets ?? 0;
    bytes += e.counter?.bytes ?? 0;
  }
  if (chosen.length === 0) return { chains: 0, counters: 0, packets, bytes, payload: "" };
  const lines = [
    `delete element ${TABLE_REF} backends { ${chosen.map((e) => e.key).join(", ")} }`,
    `add element ${TABLE_REF} backends { ${chosen.map((e) => elementText({ key: e.key, value: null, comment: e.comment })).join(", ")} }`,
  ];
  const stamp = stampOf(live);
  if (stamp !== null) lines.push(`delete element ${TABLE_REF} stamp { ${mark(stamp)} }`, `add element ${TABLE_REF} stamp { ${mark(stamp)} }`);
  if (injectFault) lines.push(INJECTED_FAULT);
  return { chains: 0, counters: chosen.length, packets, bytes, payload: `${lines.join("\n")}\n` };
}

export async function resetNftCounters(opts: CountersResetOptions & { runner?: Runner }): Promise<CountersResetResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const run = opts.runner ?? nftRunner;
  return withTargetLock(opts.target, timeoutMs, async (lock) => {
    const started = performance.now();
    // The two sets it writes, not the whole table (5,000 farms' chains and maps).
    const [backends, stamp] = await Promise.all([readNftSet(opts.target, "backends", timeoutMs, run), readNftSet(opts.target, "stamp", timeoutMs, run)]);
    const live: LiveNft = { ...backends, sets: new Map([...backends.sets, ...stamp.sets]) };
    const plan = nftResetPayload(live, opts.farm ?? null, Boolean(opts.injectFault));
    if (plan.payload !== "") {
      const r = await run("nft", ["-f", "-"], { target: opts.target, input: plan.payload, inputAsFile: true, timeoutMs, allowFailure: true, holdFd: lock.fd });
      if (r.exitCode !== 0) {
        const e = new NftApplyError(r.stderr.trim() || `nft exited with code ${r.exitCode}`, plan.payload);
        e.message = `nft refused the counter reset (${(r.stderr.trim() || `exit code ${r.exitCode}`).split("\n")[0]}): no counter was reset`;
        throw e;
      }
    }
    return { engine: "nftables", scope: { farm: opts.farm ?? null }, ...plan, durationMs: performance.now() - started };
  });
}
