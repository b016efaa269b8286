#!/usr/bin/env node
// The CLI runs from its prebuilt bundle (scripts/build-cli.mjs) while that is
// up to date with its sources; otherwise from the TypeScript itself through tsx.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function fresh() {
  try {
    const { sources } = JSON.parse(fs.readFileSync(path.join(root, "dist", "cli", "sources.json"), "utf8"));
    return sources.every(([file, mtime]) => fs.statSync(path.join(root, file)).mtimeMs === mtime);
  } catch {
    return false;
  }
}

let main;
if (fresh()) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../lib/cli/main.ts"));
}
process.exitCode = await main(process.argv);
