/**
 * What the agent hop costs: the one-farm change the console makes (a weight
 * edit, applied scoped with the whole farm set) at 5,000 farms of 4 backends,
 * straight through the applier in this process and through a running agent
 * over its Unix socket, alternating so both see the same machine state.
 * Throwaway namespace, throwaway socket; never the host.
 *
 *   npx tsx bench/agent-hop.ts [--farms 5000] [--repeat 21]
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { agentKernel } from "../lib/agent/client.ts";
import { startAgent } from "../tests/helpers/agent.ts";
import { applyFarms } from "../lib/applier/index.ts";
import type { ResolvedFarm } from "../lib/farms/schema.ts";
import { directKernel } from "../lib/kernel/direct.ts";
import type { KernelPort } from "../lib/kernel/port.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import type { Target } from "../lib/privileged/target.ts";
import { benchFarms, machine, median, ms } from "./common.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const n = Number(arg("farms", "5000"));
const repeat = Number(arg("repeat", "21"));

async function main() {
  console.log(`machine: ${machine()}`);
  const ns = `hop${randomBytes(3).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-hop-"));
  const socket = path.join(dir, "agent.sock");
  await runPrivileged("ip", ["netns", "add", ns]);
  const target: Target = { kind: "netns", name: ns };
  let agent: Awaited<ReturnType<typeof startAgent>> | null = null;
  try {
    agent = await startAgent({ socket, target, logFile: path.join(dir, "agent.log"), testHooks: false });
    const resolved: ResolvedFarm[] = (await applyFarms(benchFarms(n), { target })).farms;
    const ways: [string, KernelPort][] = [
      ["direct (applier in the caller)", directKernel],
      ["through the agent (Unix socket)", agentKernel(socket)],
    ];
    const times = new Map<string, number[]>(ways.map(([w]) => [w, []]));
    for (let r = 0; r < repeat; r++) {
      for (const [way, k] of r % 2 ? [...ways].reverse() : ways) {
        const victim = resolved[(r * 7919 + (way.startsWith("direct") ? 0 : 1)) % n]!;
        const next = resolved.map((f) => (f === victim ? { ...f, backends: f.backends.map((b, i) => ({ ...b, weight: ((i * 13 + r * 7 + 3) % 100) + 1 })) } : f));
        const t = performance.now();
        const res = await k.applyFarms(next, { target, only: [victim.name] });
        times.get(way)!.push(performance.now() - t);
        if (res.mode !== "scoped" || !res.changed) throw new Error(`${way}: the change was ${res.mode}, changed=${res.changed}`);
        resolved.splice(resolved.indexOf(victim), 1, ...next.filter((f) => f.name === victim.name));
      }
    }
    console.log(`one-farm change at ${n} farms of 4 backends, ${repeat} runs each, alternating (first run of each way included):`);
    const base = median(times.get(ways[0]![0])!);
    for (const [way] of ways) {
      const xs = times.get(way)!;
      const m = median(xs);
      console.log(`  ${way.padEnd(34)} median ${ms(m)}  (min ${ms(Math.min(...xs))}, max ${ms(Math.max(...xs))})${m === base ? "" : `  hop ${(100 * (m / base - 1)).toFixed(1)} %`}`);
    }
  } finally {
    await agent?.stop();
    await runPrivileged("ip", ["netns", "del", ns], { allowFailure: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
