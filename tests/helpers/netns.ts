import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { runPrivileged } from "../../lib/privileged/run.ts";
import type { Target } from "../../lib/privileged/target.ts";

/**
 * Bare network namespaces for netfilter tests: unique names per run, linked
 * to nothing, always deleted (after each test file, and on process exit as a
 * last resort).
 */
const created = new Set<string>();

export async function createNetns(prefix = "nft"): Promise<{ name: string; target: Target }> {
  const name = `${prefix}${randomBytes(4).toString("hex")}`;
  await runPrivileged("ip", ["netns", "add", name]);
  created.add(name);
  return { name, target: { kind: "netns", name } };
}

export async function deleteNetns(name: string): Promise<void> {
  await runPrivileged("ip", ["netns", "del", name], { allowFailure: true });
  created.delete(name);
}

export async function deleteAllNetns(): Promise<void> {
  await Promise.all([...created].map(deleteNetns));
}

process.on("exit", () => {
  for (const name of created) {
    try {
      // Synchronous on purpose: nothing async runs in an exit handler.
      spawnSync("ip", ["netns", "del", name]);
    } catch {
      /* best effort */
    }
  }
});

export async function iptables(target: Target, args: string[]): Promise<string> {
  return (await runPrivileged("iptables", ["-w", "5", ...args], { target })).stdout;
}

export async function iptablesSave(target: Target, table?: string): Promise<string> {
  return (await runPrivileged("iptables-save", table ? ["-t", table] : [], { target })).stdout;
}

/** mangle and nat as iptables-save prints them, without its comments and chain declarations: what a change, revert or discard did to the rules. */
export async function mangleNatRules(target: Target): Promise<string> {
  const text = (await iptablesSave(target, "mangle")) + (await iptablesSave(target, "nat"));
  return text
    .split("\n")
    .filter((l) => !l.startsWith("#") && !l.startsWith(":"))
    .join("\n");
}

export async function iptablesRestore(target: Target, payload: string): Promise<void> {
  await runPrivileged("iptables-restore", ["--noflush", "-w", "5"], { target, input: payload });
}
