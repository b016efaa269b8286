/**
 * The traffic sampler's read, every 10 s: CPU per sample at n farms (default
 * 5,000 of 4 backends), the whole tables (readTables, as before) against the
 * scoped read of the translation counters (readNatfarmTables with
 * `translations`), on both engines, in fresh namespaces (never the host).
 *
 * A sample is what the agent and the checker do for it: the read (its child
 * processes' CPU included: iptables-save, nft), the snapshot through JSON
 * (the agent's socket: stringify on one side, parse on the other) and
 * countersOf. The two reads alternate (old, new, old, new, ...) so that a
 * loaded machine weighs on both alike; medians of `--repeat` pairs.
 *
 *   npx tsx bench/sampler.ts [--farms 5000] [--repeat 7] [--engines iptables,nftables]
 */
import { randomBytes } from "node:crypto";
import { directKernel } from "../lib/kernel/direct.ts";
import type { Engine } from "../lib/kernel/engine.ts";
import { withEngine } from "../lib/kernel/port.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import type { Target } from "../lib/privileged/target.ts";
import { countersOf } from "../lib/service/traffic-counters.ts";
import { benchFarms, machine, median, processCpuMs } from "./common.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const farms = Number(arg("farms", "5000"));
const repeat = Number(arg("repeat", "7"));
const engines = arg("engines", "iptables,nftables").split(",") as Engine[];

async function sample(read: () => Promise<unknown>): Promise<{ cpu: number; wall: number; bytes: number; counters: number }> {
  const c0 = processCpuMs();
  const t0 = performance.now();
  const wire = JSON.stringify(await read());
  const counters = countersOf(JSON.parse(wire)).length;
  return { cpu: processCpuMs() - c0, wall: performance.now() - t0, bytes: wire.length, counters };
}

async function main() {
  console.log(`machine: ${machine()}`);
  console.log(`${farms} farms of 4 backends, ${repeat} pairs per engine, alternating whole/scoped (CPU includes child processes)`);
  for (const engine of engines) {
    const name = `bsd${randomBytes(3).toString("hex")}`;
    const target: Target = { kind: "netns", name };
    await runPrivileged("ip", ["netns", "add", name], { timeoutMs: 10_000 });
    try {
      const k = withEngine(directKernel, engine);
      await k.applyFarms(benchFarms(farms), { target });
      const whole = () => k.readTables(target);
      const scoped = () => k.readNatfarmTables(target, { translations: true });
      await sample(whole);
      await sample(scoped);
      const a: Awaited<ReturnType<typeof sample>>[] = [];
      const b: typeof a = [];
      for (let i = 0; i < repeat; i++) {
        a.push(await sample(whole));
        b.push(await sample(scoped));
      }
      if (a[0]!.counters !== b[0]!.counters) throw new Error(`the reads disagree: ${a[0]!.counters} counters against ${b[0]!.counters}`);
      const row = (label: string, xs: typeof a) =>
        `  ${label.padEnd(34)} CPU ${median(xs.map((x) => x.cpu)).toFixed(0).padStart(5)} ms (min ${Math.min(...xs.map((x) => x.cpu)).toFixed(0)}), wall ${median(xs.map((x) => x.wall)).toFixed(0).padStart(5)} ms, ${(xs[0]!.bytes / 1024).toFixed(0).padStart(6)} KiB through the socket, ${xs[0]!.counters} counters`;
      console.log(`${engine}:`);
      console.log(row("whole tables (readTables)", a));
      console.log(row("scoped (translations)", b));
      console.log(`  ratio (median of pairs, CPU): ${median(a.map((x, i) => x.cpu / Math.max(1, b[i]!.cpu))).toFixed(1)}x`);
    } finally {
      await runPrivileged("ip", ["netns", "delete", name], { timeoutMs: 10_000, allowFailure: true });
    }
  }
}

await main();
