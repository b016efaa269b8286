import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { afterAll, beforeAll } from "vitest";
import { labDown, labStateDir, labSweepOrphans, labUp, uniqueLabName, type LabInfo } from "../../lib/lab/index.ts";
import { privilegedArgv } from "../../lib/privileged/run.ts";

/**
 * Labs for tests: unique names, and always removed — in afterAll/finally when
 * a test fails, on SIGINT/SIGTERM, synchronously on process exit, and (for a
 * run that was SIGKILLed) by the orphan sweep at the next run's start.
 */

export interface TestLabOptions {
  backends: number;
  ports?: number[];
  /** Name prefix, 1-6 [a-z0-9]; default "vt". */
  prefix?: string;
}

const active = new Set<string>();
let netInstalled = false;

/** Last resort on exit: nothing async runs any more, so plain synchronous commands. */
function destroySync(name: string): void {
  const run = (args: string[]) => {
    const argv = privilegedArgv("ip", args);
    return spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 5000 });
  };
  const list = run(["-j", "netns", "list"]);
  let namespaces: string[] = [];
  try {
    namespaces = (JSON.parse(list.stdout.trim() || "[]") as { name: string }[])
      .map((n) => n.name)
      .filter((n) => n.startsWith(`${name}-`));
  } catch {
    return;
  }
  for (const ns of namespaces) {
    const pids = run(["netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean);
    if (pids.length) {
      const kill = privilegedArgv("kill", ["-KILL", ...pids]);
      spawnSync(kill[0]!, kill.slice(1), { timeout: 5000 });
    }
    run(["netns", "del", ns]);
  }
  fs.rmSync(labStateDir(name), { recursive: true, force: true });
}

function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  process.on("exit", () => {
    for (const name of active) destroySync(name);
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...active].map((name) => labDown({ name }))).finally(() => process.exit(130));
    });
  }
}

let swept = false;

export async function createTestLab(opts: TestLabOptions): Promise<LabInfo> {
  installSafetyNet();
  if (!swept) {
    swept = true;
    await labSweepOrphans();
  }
  const name = uniqueLabName(opts.prefix ?? "vt");
  // Registered before labUp so that even an interrupted labUp is cleaned up.
  active.add(name);
  try {
    return await labUp({ name, backends: opts.backends, ports: opts.ports, ownerPid: process.pid });
  } catch (err) {
    active.delete(name);
    throw err;
  }
}

export async function destroyTestLab(name: string): Promise<void> {
  try {
    await labDown({ name });
  } finally {
    active.delete(name);
  }
}

/** Runs `fn` with a fresh lab and removes the lab afterwards, whatever happens. */
export async function withLab<T>(opts: TestLabOptions | number, fn: (lab: LabInfo) => Promise<T>): Promise<T> {
  const lab = await createTestLab(typeof opts === "number" ? { backends: opts } : opts);
  try {
    return await fn(lab);
  } finally {
    await destroyTestLab(lab.name);
  }
}

/**
 * One lab for a describe block: created in beforeAll, removed in afterAll.
 * `lab.info` is available inside tests (not at collection time).
 */
export function useLab(opts: TestLabOptions | number): { readonly info: LabInfo; readonly name: string } {
  let info: LabInfo | undefined;
  beforeAll(async () => {
    info = await createTestLab(typeof opts === "number" ? { backends: opts } : opts);
  });
  afterAll(async () => {
    if (info) await destroyTestLab(info.name);
  });
  return {
    get info() {
      if (!info) throw new Error("useLab: the lab exists only inside tests (after beforeAll)");
      return info;
    },
    get name() {
      return this.info.name;
    },
  };
}

/** Names of the labs this process still holds (for assertions that cleanup happened). */
export function activeTestLabs(): string[] {
  return [...active];
}

/** The lab balancer's iptables rules, without comments, chain declarations and counters: what a change did to the kernel, comparable before and after. */
export function labBalancerRules(lbNs: string): string {
  const r = spawnSync("ip", ["netns", "exec", lbNs, "iptables-save"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout
    .split("\n")
    .filter((l) => !l.startsWith("#") && !l.startsWith(":"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
    .join("\n");
}
