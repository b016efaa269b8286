import { FarmListSchema } from "../lib/farms/schema.ts";
import { resolveMarks } from "../lib/farms/resolve.ts";
import { directKernel } from "../lib/kernel/direct.ts";
import { withEngine, type Engine } from "../lib/kernel/index.ts";
import { createNetns, deleteNetns } from "../tests/helpers/netns.ts";
import { benchFarms, machine, median, ms } from "./common.ts";

/**
 * Reset counters at scale, both engines, in throwaway namespaces: all of
 * natfarm's counters, and one farm's (whose rules share the dispatch and
 * mark-block chains with others'), each as the agent runs it (a read under
 * the target lock, then one transaction). The nftables engine runs `nft`
 * processes here (the agent's warm libnftables session would be faster).
 * `npx tsx bench/counters-reset.ts [--sizes 100,2000,5000] [--repeat 5]`
 */
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = arg("--sizes", "100,2000,5000").split(",").map(Number);
const repeat = Number(arg("--repeat", "5"));

console.log(`machine: ${machine()}`);
console.log("engine | farms | reset all (median) | counters | reset one farm (median) | counters");
console.log("-------|-------|--------------------|----------|-------------------------|---------");
for (const engine of ["iptables", "nftables"] as Engine[]) {
  const k = withEngine(directKernel, engine);
  for (const n of sizes) {
    const farms = resolveMarks(FarmListSchema.parse(benchFarms(n)));
    const ns = await createNetns("crb");
    try {
      await k.applyFarms(farms, { target: ns.target });
      const all: number[] = [];
      const one: number[] = [];
      let allCount = 0;
      let oneCount = 0;
      for (let r = 0; r < repeat; r++) {
        // Alternating, so that the other engineers' load falls on both alike.
        const a = await k.resetCounters(ns.target);
        all.push(a.durationMs);
        allCount = a.counters;
        const o = await k.resetCounters(ns.target, { farm: `f${(r * 37) % n}` });
        one.push(o.durationMs);
        oneCount = o.counters;
      }
      console.log(`${engine} | ${n} | ${ms(median(all))} | ${allCount} | ${ms(median(one))} | ${oneCount}`);
    } finally {
      await deleteNetns(ns.name);
    }
  }
}
