import fs from "node:fs";
import fsp from "node:fs/promises";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import { spawnPrivilegedDetached } from "../privileged/spawn.ts";
import { acquireFlock } from "../sys/flock.ts";
import { conntrackdFiles } from "./conntrackd.ts";
import { readNodeRuntime, readNodeState, runtimeFiles, writeNodeState, type NodeStateFile } from "./runtime.ts";
import { conntrackdSteps, type VrrpState } from "./transitions.ts";

/**
 * `natfarm cluster notify --run-dir DIR <state>`: what keepalived runs on a
 * transition (see keepalived.ts). It runs inside the node's namespace, as
 * root, a child of keepalived: records the new state at once (so `cluster
 * status` sees it while conntrackd still works), then runs conntrackd's
 * steps for that state and records how each ended.
 *
 * keepalived starts one process per event without waiting, so two quick
 * transitions can overlap: a lock in the run directory runs them one after
 * the other, and the state file is not rewound by an older event that got
 * the lock late (each knows when keepalived announced it).
 */
export interface NotifyDeps {
  run: Runner;
  /** Starts conntrackd in the background (its log in the run directory). */
  startConntrackd: (config: string, logFile: string) => void;
}

const realDeps: NotifyDeps = {
  run: runPrivileged,
  startConntrackd: (config, logFile) => void spawnPrivilegedDetached("conntrackd", ["-C", config], { logFile }),
};

export async function clusterNotify(runDir: string, state: VrrpState, deps: NotifyDeps = realDeps): Promise<NodeStateFile> {
  const { run } = deps;
  const announced = new Date();
  const node = await readNodeRuntime(runDir);
  const files = runtimeFiles(runDir);
  const log = (line: string) => fs.appendFileSync(files.log, `${new Date().toISOString()} ${node.nodeName} ${line}\n`);
  const lock = await acquireFlock(files.lock, { timeoutMs: 60_000, what: `cluster notify ${state}` });
  try {
    const latest = readNodeState(runDir);
    const stale = latest !== null && Date.parse(latest.at) > announced.getTime();
    const record: NodeStateFile = { state, at: announced.toISOString(), steps: [], stepsDone: false };
    if (!stale) await writeNodeState(runDir, record);
    log(`${state}${stale ? ` (announced before the recorded ${latest!.state} of ${latest!.at}: conntrackd steps only)` : ""}`);
    if (node.conntrackd) {
      const conf = conntrackdFiles(runDir);
      for (const step of conntrackdSteps(state)) {
        const t0 = performance.now();
        let r = await run("conntrackd", ["-C", conf.config, ...step.args], { allowFailure: true, timeoutMs: 30_000 });
        if (r.exitCode !== 0 && step.startWhenDown) {
          log(`conntrackd does not answer (${(r.stderr || r.stdout).trim()}): starting it`);
          await fsp.rm(conf.lock, { force: true });
          deps.startConntrackd(conf.config, `${runDir}/conntrackd.out`);
          r = await waitForConntrackd(conf.config, run);
        }
        const ms = Math.round(performance.now() - t0);
        const output = (r.stdout + r.stderr).trim().slice(0, 2000);
        record.steps.push({ args: step.args, exitCode: r.exitCode, ms, output });
        log(`conntrackd ${step.args.join(" ")} (${step.why}): exit ${r.exitCode} in ${ms} ms${r.exitCode !== 0 && output ? `: ${output}` : ""}`);
      }
    }
    record.stepsDone = true;
    if (!stale) await writeNodeState(runDir, record);
    return record;
  } finally {
    lock.release();
  }
}

async function waitForConntrackd(config: string, run: Runner) {
  let last = { stdout: "", stderr: "", exitCode: 1 };
  for (let i = 0; i < 50; i++) {
    last = await run("conntrackd", ["-C", config, "-s"], { allowFailure: true, timeoutMs: 5_000 });
    if (last.exitCode === 0) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}
