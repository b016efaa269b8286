#!/usr/bin/env node
// The CLI is TypeScript; tsx's loader lets `npx natfarm` run it without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../lib/cli/main.ts");
process.exitCode = await main(process.argv);
