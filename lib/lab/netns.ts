import { runPrivileged } from "../privileged/run.ts";

/** Every named network namespace on the machine (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await runPrivileged("ip", ["-j", "netns", "list"]);
  const text = stdout.trim();
  if (!text) return [];
  const parsed = JSON.parse(text) as { name?: unknown }[];
  return parsed.map((entry) => entry.name).filter((n): n is string => typeof n === "string");
}

export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => ns.startsWith(prefix));
}

/**
 * Runs several `ip` commands in one process (`ip -batch -`), optionally inside
 * a namespace (`ip -n`). One process per namespace instead of one per command
 * keeps a 32-backend lab under a second or two.
 */
export async function ipBatch(lines: string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  const args = netns ? ["-n", netns, "-batch", "-"] : ["-batch", "-"];
  await runPrivileged("ip", args, { input: lines.join("\n") + "\n" });
}

export async function namespacePids(ns: string): Promise<number[]> {
  const { stdout, exitCode } = await runPrivileged("ip", ["netns", "pids", ns], { allowFailure: true });
  if (exitCode !== 0) return [];
  return stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Ends every process inside `ns`: TERM, then KILL for whatever is left after
 * `graceMs`. A namespace holding a process would outlive `ip netns del`.
 */
export async function killNamespaceProcesses(ns: string, graceMs = 2000): Promise<void> {
  let pids = await namespacePids(ns);
  if (pids.length === 0) return;
  await runPrivileged("kill", ["-TERM", ...pids.map(String)], { allowFailure: true });
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    pids = await namespacePids(ns);
    if (pids.length === 0) return;
  }
  await runPrivileged("kill", ["-KILL", ...pids.map(String)], { allowFailure: true });
  for (let i = 0; i < 40 && (await namespacePids(ns)).length > 0; i++) await sleep(50);
}

export async function sysctlIn(ns: string, settings: Record<string, string>, allowFailure = false): Promise<void> {
  const args = ["-q", "-w", ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)];
  await runPrivileged("sysctl", args, { target: { kind: "netns", name: ns }, allowFailure });
}
