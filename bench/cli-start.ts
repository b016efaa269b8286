/**
 * How fast a CLI command starts: `natfarm --help` (the prebuilt bundle, as
 * after `npm install`) against `node -e 0`, in pairs so both see the same
 * machine, and `natfarm --help` through tsx (what a stale or missing build
 * falls back to).
 *
 *   npx tsx bench/cli-start.ts [--runs 21]
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { machine, median, ms } from "./common.ts";

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1] || 21);
const root = path.join(import.meta.dirname, "..");
const time = (argv: string[], env: NodeJS.ProcessEnv = process.env) => {
  const t = performance.now();
  const r = spawnSync(process.execPath, argv, { cwd: root, env, stdio: "ignore" });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}`);
  return performance.now() - t;
};

console.log(`machine: ${machine()}`);
const build = spawnSync(process.execPath, [path.join(root, "scripts", "build-cli.mjs")], { encoding: "utf8" });
if (build.status !== 0) throw new Error(build.stderr);
const bare: number[] = [];
const cli: number[] = [];
const tsx: number[] = [];
for (let i = 0; i < runs; i++) {
  bare.push(time(["-e", "0"]));
  cli.push(time([path.join(root, "bin", "natfarm.mjs"), "--help"]));
  tsx.push(time(["--import", "tsx", path.join(root, "lib", "cli", "run.ts"), "--help"]));
}
console.log(`${runs} paired runs, medians:`);
console.log(`  node -e 0                      ${ms(median(bare))}`);
console.log(`  natfarm --help (prebuilt)      ${ms(median(cli))}  (${(median(cli) / median(bare)).toFixed(1)}× node -e 0; target ≤ 4×)`);
console.log(`  natfarm --help (through tsx)   ${ms(median(tsx))}  (${(median(tsx) / median(bare)).toFixed(1)}×)`);
