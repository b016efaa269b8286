/**
 * Staged changes at scale: what the pending view (every page's banner) costs
 * with staging on and one pending change, against staging off, at N farms.
 * Prints figures, asserts nothing.
 *
 *   npx tsx bench/staged.ts [--farms 2000,5000] [--samples 40] [--live]
 *
 * A temporary SQLite database per size gets N farms of 4 backends (no
 * kernel: target none, the view reads the database only). Samples alternate
 * between staging off and on (a paired comparison: a load that comes and
 * goes weighs on both alike); "on" is the view with one pending change, as
 * every page asks for it (the cache hit), "after a change" the first view
 * after a new revision (the cache miss), and "whole set" what the view cost
 * before (the applied and the desired configuration compared in full).
 * `--live` also applies the farms to a throwaway network namespace (never
 * the root namespace; deleted after) and times the banner's live diff of the
 * one pending farm (the scoped drift reads, in this process: no agent hop),
 * iptables engine.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { disconnectPrisma, openDatabase } from "../lib/db/client.ts";
import { FarmListSchema } from "../lib/farms/schema.ts";
import { compareConfigs } from "../lib/service/config-diff.ts";
import { readAllConfig } from "../lib/service/config-history.ts";
import { importFarms } from "../lib/service/farm-io.ts";
import { createFarmService } from "../lib/service/farm-service.ts";
import { pendingView, readStaged, writeStaged } from "../lib/service/staging.ts";
import { directKernel } from "../lib/kernel/index.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import type { Target } from "../lib/privileged/target.ts";
import { benchFarms, machine, median } from "./common.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const SIZES = arg("farms", "2000,5000").split(",").map(Number);
const SAMPLES = Number(arg("samples", "40"));
const LIVE = process.argv.includes("--live");
const f2 = (x: number) => `${x.toFixed(2)} ms`;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

console.log(machine());
for (const n of SIZES) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "natfarm-bench-staged-"));
  try {
    const db = await openDatabase(`file:${path.join(dir, "staged.db")}`);
    await importFarms(db, FarmListSchema.parse(benchFarms(n)));
    const service = createFarmService({ db, target: null });
    await service.setStaging(true);
    const farm = (await service.getFarm("f7"))!;
    await service.updateBackend("f7", farm.backends[0]!.mark, { weight: 9 });
    const view = await pendingView(db);
    if (view.farms.join() !== "f7") throw new Error(`expected one pending farm, got ${view.farms.length}`);
    const off: number[] = [];
    const on: number[] = [];
    const tracked = (await db.stagedState.findUnique({ where: { id: 1 } }))!;
    for (let i = 0; i < SAMPLES; i++) {
      // Off: nothing stages, nothing is tracked, as before staging existed. Each write moves updatedAt:
      // the first view after it computes again (not timed), the page views after it are what is timed.
      await writeStaged(db, { enabled: false, applied: null, appliedRevision: null });
      await pendingView(db);
      off.push(await time(() => pendingView(db)));
      await writeStaged(db, { enabled: true, applied: tracked.applied, appliedRevision: tracked.appliedRevision });
      await pendingView(db);
      on.push(await time(() => pendingView(db)));
    }
    const miss: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < Math.min(SAMPLES, 10); i++) {
      await service.updateBackend("f7", farm.backends[0]!.mark, { weight: 10 + i });
      miss.push(await time(() => pendingView(db)));
      whole.push(await time(async () => compareConfigs((await readStaged(db)).applied ?? [], [...(await readAllConfig(db)).values()])));
    }
    const mo = median(off);
    const mn = median(on);
    console.log(`${n} farms, one pending change: staging off ${f2(mo)}, on ${f2(mn)} (+${f2(mn - mo)}), median of ${SAMPLES} alternating; first view after a change ${f2(median(miss))}; the whole-set comparison it replaces ${f2(median(whole))}`);
    if (LIVE) await live(db, n);
  } finally {
    await disconnectPrisma();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The banner's live diff of one pending farm, against N farms applied to a namespace of its own. */
async function live(db: Awaited<ReturnType<typeof openDatabase>>, n: number): Promise<void> {
  const ns = `nfbs${randomBytes(3).toString("hex")}`;
  const target: Target = { kind: "netns", name: ns };
  await runPrivileged("ip", ["netns", "add", ns]);
  try {
    const service = createFarmService({ db, target, kernel: directKernel });
    await service.discardStaged();
    await service.setStaging(false);
    const t = performance.now();
    const all = await service.applyAll("bench");
    if (!all.ok) throw new Error(all.message);
    const applied = performance.now() - t;
    await service.setStaging(true);
    const farm = (await service.getFarm("f7"))!;
    await service.updateBackend("f7", farm.backends[0]!.mark, { weight: 3 });
    const xs: number[] = [];
    const page: number[] = [];
    for (let i = 0; i < 10; i++) {
      // A page: the reading of a moment ago is shown at once, the next one is made behind it.
      page.push(await time(() => service.staging({ live: true, waitMs: 250 })));
      service.forgetStagedLive();
      xs.push(await time(async () => {
        const v = await service.staging({ live: true });
        if (v.live?.farms.length !== 1 || v.live.error) throw new Error(`live diff: ${JSON.stringify(v.live).slice(0, 200)}`);
      }));
    }
    console.log(`${n} farms applied to netns:${ns} (${f2(applied)}): the banner's live diff of the one pending farm ${f2(median(xs))} when read (median of 10); a page's view with a reading at hand ${f2(median(page))}`);
  } finally {
    await runPrivileged("ip", ["netns", "del", ns], { allowFailure: true });
  }
}
