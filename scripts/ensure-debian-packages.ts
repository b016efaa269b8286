/**
 * Installs the Debian packages natfarm needs when one of their commands is
 * missing (lib/supervisor/packages.ts says which). `npm test` runs it first
 * (the "pretest" script); `npm start` does the same check itself.
 *
 *   npx tsx scripts/ensure-debian-packages.ts test|start|start-no-target
 *
 * Everything present: exits 0 at once, silently, with no apt call. Missing
 * and root on Debian: one logged `apt-get install -y --no-install-recommends
 * ...` (after `apt-get update` when the lists are missing). Missing and not
 * root, or not Debian: prints what to install and exits 1.
 */
import { COMMANDS, ensurePackages, realDeps, type Purpose } from "../lib/supervisor/packages.ts";

const purpose = (process.argv[2] ?? "test") as Purpose;
if (!(purpose in COMMANDS)) {
  process.stderr.write(`usage: ensure-debian-packages.ts ${Object.keys(COMMANDS).join("|")}\n`);
  process.exit(2);
}
const log = (m: string) => process.stdout.write(`natfarm: ${m}\n`);
const r = await ensurePackages(purpose, realDeps(log));
if (!r.ok) {
  process.stderr.write(`natfarm: ${r.message}\n`);
  process.exit(1);
}
if (r.installed.length) log(`installed ${r.installed.join(" ")}`);
