#!/usr/bin/env node
/**
 * Builds the CLI (and with it the agent) ahead of time into dist/cli, so a
 * command starts without compiling TypeScript: esbuild bundles lib/cli/main.ts
 * with its sources (packages stay in node_modules), one chunk per command's
 * lazily loaded part. It records the sources it read and their mtimes:
 * bin/natfarm.mjs runs the bundle only while none of them changed, and falls
 * back to tsx otherwise, so a stale build never runs. Runs at `npm install`
 * (postinstall), `npm run build` and before `npm test`.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(root, "dist", "cli");
const started = Date.now();
fs.rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ["lib/cli/main.ts"],
  outdir,
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  metafile: true,
  logLevel: "warning",
});
const sources = Object.keys(result.metafile.inputs).map((file) => [file, fs.statSync(path.join(root, file)).mtimeMs]);
fs.writeFileSync(path.join(outdir, "sources.json"), JSON.stringify({ builtAt: Date.now(), sources }));
console.log(`natfarm: CLI built into dist/cli (${sources.length} sources, ${Date.now() - started} ms)`);
