import fs from "node:fs";
import { agentKernel, AgentUnavailableError, AgentError } from "../agent/client.ts";
import { agentSocketPath } from "../agent/protocol.ts";
import { directKernel } from "./direct.ts";
import { engineFromEnv } from "./engine.ts";
import { withEngine, type KernelPort } from "./port.ts";

export type { ClusterPort, CountersResetResult, EngineOption, KernelApplyOptions, KernelApplyResult, KernelPort, LabPort } from "./port.ts";
export { withEngine } from "./port.ts";
export { DEFAULT_ENGINE, ENGINES, engineFromEnv, isEngine, type Engine } from "./engine.ts";
export { directKernel } from "./direct.ts";
export { agentKernel, AgentUnavailableError, AgentError } from "../agent/client.ts";

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/**
 * The kernel port this process uses:
 *   - not root: the agent, always (this process runs no privileged program);
 *   - root with NATFARM_AGENT_SOCKET set: the agent (the supervisor's children, tests);
 *   - root otherwise (the CLI, the supervisor's own start-up steps): the agent
 *     when one answers on the default socket and serves the target, else the
 *     kernel directly — one writer at a time either way, through the target lock.
 * Its rule operations use NATFARM_ENGINE's engine (iptables when unset)
 * unless a call names another (the CLI's --engine).
 */
export function kernelFor(env: NodeJS.ProcessEnv = process.env): KernelPort {
  const engine = engineFromEnv(env);
  const socket = agentSocketPath(env);
  if (!isRoot() || env.NATFARM_AGENT_SOCKET) return withEngine(agentKernel(socket), engine);
  if (!fs.existsSync(socket)) return withEngine(directKernel, engine);
  return withEngine(withDirectFallback(agentKernel(socket)), engine);
}

/** Root's CLI: through the agent when it can, directly when the agent is gone or does not serve that target. */
function withDirectFallback(agent: KernelPort): KernelPort {
  const fallback = (e: unknown) => e instanceof AgentUnavailableError || (e instanceof AgentError && e.body.kind === "refused");
  const wrap = <A extends unknown[], R>(viaAgent: (...a: A) => Promise<R>, direct: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await viaAgent(...a);
      } catch (e) {
        if (fallback(e)) return direct(...a);
        throw e;
      }
    };
  const d = directKernel;
  const l = agent.lab;
  const c = agent.cluster!;
  return {
    via: "agent",
    applyFarms: wrap(agent.applyFarms, d.applyFarms),
    driftReport: wrap(agent.driftReport, d.driftReport),
    driftOfFarm: wrap(agent.driftOfFarm, d.driftOfFarm),
    driftOfFarms: wrap(agent.driftOfFarms, d.driftOfFarms),
    readTables: wrap(agent.readTables, d.readTables),
    readNatfarmTables: wrap(agent.readNatfarmTables, d.readNatfarmTables),
    connectionStats: wrap(agent.connectionStats, d.connectionStats),
    cutConnections: wrap(agent.cutConnections, d.cutConnections),
    resetCounters: wrap(agent.resetCounters, d.resetCounters),
    checkLocalVips: wrap(agent.checkLocalVips, d.checkLocalVips),
    ping: wrap(agent.ping, d.ping),
    lab: {
      up: wrap(l.up, d.lab.up),
      down: wrap(l.down, d.lab.down),
      status: wrap(l.status, d.lab.status),
      traffic: wrap(l.traffic, d.lab.traffic),
      hold: wrap(l.hold, d.lab.hold),
      ensureVip: wrap(l.ensureVip, d.lab.ensureVip),
      removeVip: wrap(l.removeVip, d.lab.removeVip),
      ensureClientAddresses: wrap(l.ensureClientAddresses, d.lab.ensureClientAddresses),
      stopBackendServer: wrap(l.stopBackendServer, d.lab.stopBackendServer),
      startBackendServer: wrap(l.startBackendServer, d.lab.startBackendServer),
    },
    cluster: { status: wrap(c.status, d.cluster!.status), maintenance: wrap(c.maintenance, d.cluster!.maintenance), keepalived: wrap(c.keepalived, d.cluster!.keepalived) },
  };
}

let cached: KernelPort | null = null;
/** The process's kernel port, decided once. */
export function kernel(): KernelPort {
  return (cached ??= kernelFor());
}
