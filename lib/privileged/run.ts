import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { Target } from "./target.ts";

/**
 * The one narrow door to privileged commands. Everything that touches the
 * kernel (rule applier, lab, conntrack) goes through here: fixed program
 * names, argument arrays, stdin for payloads, never a shell. Only root runs
 * them — the agent, or the CLI as root with no agent. There is no sudo path:
 * allowing `ip` in sudoers allows `ip netns exec NS <anything>`, that is root.
 * Unprivileged processes (the web console, the health checker) reach the
 * kernel through the agent (lib/kernel).
 */
export const PRIVILEGED_PROGRAMS = [
  "iptables",
  "iptables-save",
  "iptables-restore",
  "nft",
  "conntrack",
  "ip",
  "sysctl",
  "kill",
  // conntrackd's control commands (commit, flush, resync, stats) on a cluster node's state transitions.
  "conntrackd",
] as const;
export type PrivilegedProgram = (typeof PRIVILEGED_PROGRAMS)[number];

export class PrivilegedCommandError extends Error {
  constructor(
    readonly command: string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    const what = timedOut ? "timed out" : `exited with code ${exitCode ?? "?"}`;
    super(`${command.join(" ")} ${what}${stderr ? `: ${stderr.trim()}` : ""}`);
    this.name = "PrivilegedCommandError";
  }
}

export interface RunOptions {
  target?: Target;
  input?: string;
  timeoutMs?: number;
  /** Resolve instead of throwing on a non-zero exit (callers that read the code). */
  allowFailure?: boolean;
  /**
   * A lock descriptor the command inherits (as its fd 3), so that the lock
   * stays held while the command runs even if this process dies first.
   */
  holdFd?: number;
  /**
   * Hand `input` over as a file rather than a pipe: the command then reads
   * all of it even if this process dies while it runs (a pipe would end
   * early, at whatever this process had written).
   */
  inputAsFile?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** `text` in an unlinked temporary file, open for reading: the descriptor is all that is left of it. */
function inputFile(text: string): number {
  const file = path.join(os.tmpdir(), `natfarm-input-${process.pid}-${randomBytes(6).toString("hex")}`);
  fs.writeFileSync(file, text, { mode: 0o600, flag: "wx" });
  try {
    return fs.openSync(file, "r");
  } finally {
    fs.unlinkSync(file);
  }
}

export class NotPrivilegedError extends Error {
  constructor(program: string) {
    super(`${program} runs only as root (this process is uid ${process.getuid?.()}): unprivileged natfarm processes go through the natfarm agent`);
    this.name = "NotPrivilegedError";
  }
}

/** The argv that runs `program args` in `target`. */
export function privilegedArgv(program: PrivilegedProgram, args: readonly string[], target?: Target): string[] {
  if (!PRIVILEGED_PROGRAMS.includes(program)) throw new Error(`not a privileged program: ${program}`);
  if (!isRoot) throw new NotPrivilegedError(program);
  return target?.kind === "netns" ? ["ip", "netns", "exec", target.name, program, ...args] : [program, ...args];
}

/**
 * The kernel side as the applier sees it: one function that runs an
 * allowlisted program. `runPrivileged` is the real one (inside the agent, or
 * the CLI as root); tests pass a recording fake.
 */
export type Runner = (program: PrivilegedProgram, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

export async function runPrivileged(
  program: PrivilegedProgram,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const argv = privilegedArgv(program, args, options.target);
  const inputFd = options.inputAsFile && options.input !== undefined ? inputFile(options.input) : undefined;
  const result = await execa(argv[0]!, argv.slice(1), {
    ...(inputFd !== undefined || options.holdFd !== undefined ? {} : { input: options.input }),
    timeout: options.timeoutMs ?? 30_000,
    reject: false,
    stripFinalNewline: false,
    env: { LC_ALL: "C" },
    maxBuffer: 512 * 1024 * 1024,
    // (execa's types only accept numeric literals for a descriptor, hence the cast.)
    ...(options.holdFd !== undefined || inputFd !== undefined
      ? { stdio: [inputFd ?? "pipe", "pipe", "pipe", ...(options.holdFd !== undefined ? [options.holdFd] : [])] as ["pipe", "pipe", "pipe", 3] }
      : {}),
    ...(inputFd === undefined && options.holdFd !== undefined && options.input !== undefined ? { input: options.input } : {}),
  });
  if (inputFd !== undefined) fs.closeSync(inputFd);
  const exitCode = result.exitCode ?? -1;
  if ((exitCode !== 0 || result.timedOut) && !options.allowFailure) {
    throw new PrivilegedCommandError(argv, result.exitCode, String(result.stderr ?? ""), Boolean(result.timedOut));
  }
  return { stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? ""), exitCode };
}
