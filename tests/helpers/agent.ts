import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { agentCall } from "../../lib/agent/client.ts";
import { formatTarget, type Target } from "../../lib/privileged/target.ts";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `natfarm agent` serving one target (and lab) on `socket` — with the
 * tests' fault injection on unless `testHooks: false`, to root only unless a
 * `group` — and waits until it answers. For tests and benchmarks.
 */
export async function startAgent(o: { socket: string; target: Target; moreTargets?: Target[]; lab?: string; logFile: string; group?: string; testHooks?: boolean; env?: Record<string, string> }): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const out = fs.openSync(o.logFile, "a");
  const argv = [
    path.join(ROOT, "bin", "natfarm.mjs"),
    "agent",
    "--socket",
    o.socket,
    "--target",
    formatTarget(o.target),
    ...(o.moreTargets ?? []).flatMap((t) => ["--target", formatTarget(t)]),
    ...(o.lab ? ["--lab", o.lab] : []),
    ...(o.group ? ["--group", o.group] : []),
    ...(o.testHooks === false ? [] : ["--test-hooks"]),
  ];
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ["ignore", out, out], env: { ...process.env, ...o.env } });
  fs.closeSync(out);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const ended = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([ended, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  for (let i = 0; !(await agentCall(o.socket, "ping", {}, 1000).then(() => true, () => false)); i++) {
    if (child.exitCode !== null || i > 300) {
      await stop();
      throw new Error(`the agent did not come up:\n${fs.readFileSync(o.logFile, "utf8").slice(-3000)}`);
    }
    await sleep(100);
  }
  return { child, stop };
}
