import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What the supervisor runs, declared as data: one entry per child. The next
 * step (a root agent, the web server and the checker as an unprivileged user)
 * is one more entry and a `user` on two others; the supervisor itself does
 * not change.
 */
export interface ChildSpec {
  /** Short name for the logs: "web", "checker", later "agent". */
  name: string;
  /** The program and its arguments (no shell): argv[0] is an absolute path or a name on PATH. */
  argv: string[];
  /** Added to the supervisor's own environment. */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Network namespace to run in. The child is then `ip netns exec NS setpriv
   * ... -- argv`: `ip netns exec` and setpriv both exec, so it is ONE process
   * (the program itself), not a wrapper that could die and leave it behind.
   */
  netns?: string;
  /**
   * Unprivileged user (and group) to run as. setpriv drops the ids and sets
   * the parent-death signal afterwards (a credential change clears it), see
   * execArgv().
   */
  user?: { name: string; group: string };
  /** How long the child may take to end after SIGTERM before SIGKILL (default: the supervisor's). */
  stopGraceMs?: number;
}

/** The parent-watching preload every Node child gets (`node --import <this>`): see parent-guard.mjs. */
export const PARENT_GUARD = path.join(path.dirname(fileURLToPath(import.meta.url)), "parent-guard.mjs");

/** Environment variable naming the process a child must not outlive (read and removed by the parent guard). */
export const PARENT_PID_ENV = "NATFARM_PARENT_PID";

/**
 * The argv the supervisor really executes for a child:
 *
 *   [ip netns exec NS] setpriv [--reuid U --regid G --init-groups] --pdeathsig KILL -- argv
 *
 * - `ip netns exec` first: entering a namespace needs root, so it runs before
 *   any uid drop.
 * - setpriv last before the program: it changes the credentials first and
 *   sets PR_SET_PDEATHSIG after them (util-linux applies --pdeathsig after
 *   --reuid/--regid; the kernel clears the death signal on a credential
 *   change, so the reverse order would silently lose it). Nothing between
 *   setpriv and the program may change credentials either: exec of a
 *   set-user-id program (sudo) clears the death signal too. The death signal
 *   survives the plain exec into the program, so the program itself is
 *   SIGKILLed by the kernel when the supervisor dies, even by SIGKILL.
 *   (The signal follows the thread that forked the child: Node spawns from
 *   its main thread, which ends only with the process.)
 */
export function execArgv(spec: ChildSpec): string[] {
  if (!spec.argv.length) throw new Error(`child ${spec.name}: empty argv`);
  const argv: string[] = [];
  if (spec.netns) argv.push("ip", "netns", "exec", spec.netns);
  argv.push("setpriv");
  if (spec.user) argv.push("--reuid", spec.user.name, "--regid", spec.user.group, "--init-groups");
  argv.push("--pdeathsig", "KILL", "--", ...spec.argv);
  return argv;
}
