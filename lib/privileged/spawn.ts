import fs from "node:fs";
import { execa } from "execa";
import { privilegedArgv, type PrivilegedProgram } from "./run.ts";
import type { Target } from "./target.ts";

export interface SpawnDetachedOptions {
  target?: Target;
  /** stdout and stderr of the process are appended here (it outlives our pipes). */
  logFile: string;
}

export interface DetachedProcess {
  /** pid of the spawned argv[0]; with `ip netns exec` (which execs) that is the program itself. */
  pid: number;
  argv: string[];
}

/**
 * Starts a long-running privileged process (e.g. a lab server inside a
 * namespace) that must survive the caller: own process group, no pipes back
 * to us, not waited for. The argv comes from `privilegedArgv`, so the same
 * allowlist and root-only rule as `runPrivileged` apply. To run a non-allowlisted
 * program inside a namespace, spawn `ip` with `netns exec <ns> <program> ...`.
 */
export function spawnPrivilegedDetached(
  program: PrivilegedProgram,
  args: readonly string[],
  options: SpawnDetachedOptions,
): DetachedProcess {
  const argv = privilegedArgv(program, args, options.target);
  // A descriptor, not a pipe or an execa file stream: those would run through
  // this process and break (EPIPE) when it exits while the server lives on.
  // (execa's types only accept numeric literals for a descriptor, hence the cast.)
  const fd = fs.openSync(options.logFile, "a") as 3;
  try {
    const child = execa(argv[0]!, argv.slice(1), {
      detached: true,
      cleanup: false,
      reject: false,
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
      env: { LC_ALL: "C" },
    });
    // Its exit is observed through pid files / `ip netns pids`, not this promise.
    child.catch(() => {});
    child.unref();
    if (child.pid === undefined) throw new Error(`could not spawn ${argv.join(" ")}`);
    return { pid: child.pid, argv };
  } finally {
    // The child has its own copy of the descriptor.
    fs.closeSync(fd);
  }
}
