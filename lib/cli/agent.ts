import fs from "node:fs";
import type { Command } from "commander";
import { readTarget, type Target } from "../privileged/target-text.ts";
import { UsageError } from "./errors.ts";

/** `natfarm agent`: the privileged daemon the console and the health checker talk to (DESIGN.md, "Processes"). */
export function registerAgentCommand(program: Command, out: (s: string) => void): void {
  const collect = (v: string, all: string[]) => [...all, v];
  program
    .command("agent")
    .description("run the privileged agent: typed kernel operations on a Unix socket, for the unprivileged console")
    .option("--socket <path>", "Unix socket to listen on (default NATFARM_AGENT_SOCKET or /run/natfarm/agent.sock)")
    .option("-t, --target <target>", "a target it serves (repeat for more)", collect, [])
    .option("--lab <name>", "a lab whose operations it runs (repeat for more)", collect, [])
    .option("--group <name>", "group allowed to connect (the console's); without it only root can")
    .option("--test-hooks", "accept the tests' fault injection")
    .action(async (o: { socket?: string; target: string[]; lab: string[]; group?: string; testHooks?: boolean }) => {
      if (process.getuid?.() !== 0) throw new UsageError("the agent runs as root: it is the one process that runs privileged programs");
      const targets: Target[] = o.target.map((text) => {
        const r = readTarget(text);
        if (!r.ok) throw new UsageError(r.message);
        return r.target;
      });
      if (targets.length === 0 && o.lab.length === 0) throw new UsageError("name at least one --target or --lab to serve");
      const gid = o.group === undefined ? undefined : groupId(o.group);
      const [{ startAgent }, { agentSocketPath }] = await Promise.all([import("../agent/server.ts"), import("../agent/protocol.ts")]);
      const agent = await startAgent({ socket: o.socket ?? agentSocketPath(), targets, labs: o.lab, gid, testHooks: Boolean(o.testHooks) });
      out(`natfarm agent listening on ${agent.socket}`);
      await new Promise<void>((resolve) => {
        for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve());
      });
      await agent.close();
    });
}

function groupId(name: string): number {
  for (const line of fs.readFileSync("/etc/group", "utf8").split("\n")) {
    const [n, , gid] = line.split(":");
    if (n === name) return Number(gid);
  }
  throw new UsageError(`no group named ${name} (create it, or leave --group out so only root can connect)`);
}
