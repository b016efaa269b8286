import { FarmListSchema, type FarmInput } from "../lib/farms/schema.ts";
import { resolveMarks } from "../lib/farms/resolve.ts";
import { applyNftFarms, forgetRemembered, renderFullPayload, renderNft } from "../lib/nftables/index.ts";
import { useNftRunner } from "../lib/nftables/apply.ts";
import { enableNftSessions } from "../lib/nftables/session.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import { createNetns, deleteNetns } from "../tests/helpers/netns.ts";
import { benchFarms, machine, median, ms } from "./common.ts";

/**
 * natfarm's nftables engine against a bare `nft -f` of the same payload, in
 * throwaway namespaces: the full load into an empty namespace, a one-farm
 * weight change (natfarm: the library call, planned from what it wrote last,
 * through `nft -f` and through a warm libnftables session as the agent runs
 * it; bare: the same transaction's commands), and an unchanged re-apply (a
 * full read of the table). `npx tsx bench/nft.ts [--sizes 10,1000,5000] [--repeat 7]`
 */
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = arg("--sizes", "10,1000,5000").split(",").map(Number);
const repeat = Number(arg("--repeat", "7"));
const now = () => performance.now();

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = now();
  await fn();
  return now() - t;
}

const reweighted = (farms: FarmInput[], k: number, round: number) =>
  farms.map((f, i) => (i === k ? { ...f, backends: f.backends!.map((b, j) => ({ ...b, weight: j === 0 ? 1 + (round % 2) * 4 : b.weight })) } : f));

console.log(`machine: ${machine()}, ${(await runPrivileged("nft", ["--version"])).stdout.trim()}`);
const session = enableNftSessions();
console.log("farms | full load natfarm | bare nft -f | one-farm change natfarm (median) | bare nft -f of it (median) | one-farm change, libnftables session (median) | unchanged re-apply (median)");
console.log("------|-------------------|-------------|----------------------------------|----------------------------|-----------------------------------------------|----------------------------");
for (const n of sizes) {
  // With their marks, as the console's database holds them (a scoped change of marked farms plans from those farms alone).
  const farms: FarmInput[] = resolveMarks(FarmListSchema.parse(benchFarms(n)));
  const payload = renderFullPayload(renderNft(resolveMarks(FarmListSchema.parse(farms))));
  const a = await createNetns("nfb");
  const b = await createNetns("nfb");
  try {
    forgetRemembered();
    const full = await timed(() => applyNftFarms(farms, { target: a.target }));
    const bare = await timed(() => runPrivileged("nft", ["-f", "-"], { target: b.target, input: payload }));
    const change: number[] = [];
    const bareChange: number[] = [];
    const k = Math.floor(n / 2);
    let last = "";
    for (let round = 1; round <= repeat; round++) {
      let r: Awaited<ReturnType<typeof applyNftFarms>> | undefined;
      change.push(await timed(async () => (r = await applyNftFarms(reweighted(farms, k, round), { target: a.target, only: [`f${k}`] }))));
      if (r!.planned !== "remembered") throw new Error("the one-farm change read the table");
      // The same commands without natfarm's stamp swap, against the bare namespace (which holds the same table).
      const commands = r!.payload.split("\n").filter((l) => !l.includes(" stamp ")).join("\n");
      if (commands === last) continue;
      last = commands;
      bareChange.push(await timed(() => runPrivileged("nft", ["-f", "-"], { target: b.target, input: commands })));
    }
    // The same change through a warm session (the agent's way), the session opened before the first timed round.
    const viaSession: number[] = [];
    useNftRunner(session.sessions.run);
    try {
      await applyNftFarms(reweighted(farms, k, repeat + 1), { target: a.target, only: [`f${k}`] });
      for (let round = repeat + 2; round <= 2 * repeat + 1; round++) {
        let r: Awaited<ReturnType<typeof applyNftFarms>> | undefined;
        viaSession.push(await timed(async () => (r = await applyNftFarms(reweighted(farms, k, round), { target: a.target, only: [`f${k}`] }))));
        if (!r!.changed || r!.planned !== "remembered") throw new Error("the session's one-farm change changed nothing or read the table");
      }
    } finally {
      useNftRunner(null);
    }
    const unchanged: number[] = [];
    for (let round = 0; round < Math.min(repeat, 5); round++) {
      unchanged.push(await timed(() => applyNftFarms(reweighted(farms, k, 2 * repeat + 1), { target: a.target })));
    }
    console.log(
      `${String(n).padStart(5)} | ${ms(full).padStart(17)} | ${ms(bare).padStart(11)} | ${ms(median(change)).padStart(32)} | ${ms(median(bareChange)).padStart(26)} | ${ms(median(viaSession)).padStart(45)} | ${ms(median(unchanged)).padStart(27)}`,
    );
  } finally {
    await deleteNetns(a.name);
    await deleteNetns(b.name);
  }
}
await session.close();
