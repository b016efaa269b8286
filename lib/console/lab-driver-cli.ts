import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import type { LabInfo, TrafficResult } from "../lab/index.ts";
import { projectRoot } from "../db/env.ts";
import type { LabDriver } from "./lab-service.ts";

/**
 * The lab driven through `natfarm lab ... --json`. The Next server cannot
 * bundle lib/lab (it locates its helper scripts relative to its own source
 * file), and lab runs are slow enough that a process start does not matter.
 */
const run = promisify(execFile);

async function natfarm(args: string[], timeoutMs: number): Promise<string> {
  const root = projectRoot();
  try {
    const { stdout } = await run(process.execPath, [path.join(root, "bin", "natfarm.mjs"), "lab", ...args], {
      cwd: root,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error((err.stderr ?? "").trim().replace(/^natfarm: /, "") || err.message);
  }
}

function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as T;
}

export const cliLabDriver: LabDriver = {
  async status(name) {
    const out = await natfarm(["status", "--name", name], 30_000);
    return out.trim().startsWith("{") ? lastJson<LabInfo>(out) : null;
  },
  async up(name, backends) {
    return lastJson<LabInfo>(await natfarm(["up", "--name", name, "--backends", String(backends), "--json"], 120_000));
  },
  async traffic(o) {
    const args = ["traffic", "--name", o.name, "--vip", o.vip, "--port", String(o.port), "--connections", String(o.connections), "--protocol", o.protocol, "--json"];
    // Up to 100 waves of 32 connections, each bounded by the client's own timeout.
    return lastJson<TrafficResult>(await natfarm(args, 10 * 60_000));
  },
};
