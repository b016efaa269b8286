import net from "node:net";
import { ApplyError, FarmValidationError } from "../applier/errors.ts";
import type { ConnectionStats, MarkStats } from "../applier/conntrack.ts";
import type { FarmRuleDrift } from "../applier/drift.ts";
import { ClusterRefusedError } from "../cluster/maintenance.ts";
import { LabInputError } from "../lab/names.ts";
import { LabNotFoundError } from "../lab/topology.ts";
import type { ClusterPort, KernelApplyOptions, KernelApplyResult, KernelPort, LabPort } from "../kernel/port.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import type { AgentErrorBody, AgentOp, AgentResponse } from "./protocol.ts";

/**
 * The console's and checker's way to the kernel: every operation is one
 * request to the agent over its Unix socket. Errors come back as the classes
 * the direct path throws (FarmValidationError, ApplyError, ...), so callers
 * handle both alike; an agent that is not there is AgentUnavailableError.
 */
export class AgentUnavailableError extends Error {
  constructor(
    readonly socket: string,
    readonly cause: string,
    /** Whether the request had been sent: then the agent may have acted on it (what the kernel holds is not known). */
    readonly delivered = false,
  ) {
    super(`the natfarm agent is not available (${socket}: ${cause}); changes to the kernel are refused until it is back`);
    this.name = "AgentUnavailableError";
  }
}

/** The agent refused or could not do the operation for a reason of its own (not a validation or apply error). */
export class AgentError extends Error {
  constructor(readonly body: AgentErrorBody) {
    super(body.message);
    this.name = body.kind === "refused" ? "AgentRefusedError" : "AgentError";
  }
}

function toError(body: AgentErrorBody): Error {
  switch (body.kind) {
    case "invalid":
      return new FarmValidationError(body.issues ?? [body.message]);
    case "apply": {
      const e = new ApplyError(body.iptablesMessage ?? body.message, body.rolledBack ?? "rollback-failed", body.payload ?? "", body.rollbackMessage);
      // The agent's own sentence: "nft rejected the change: …" on nftables (ApplyError's would name iptables-restore).
      e.message = body.message;
      return e;
    }
    case "lab-input":
      return new LabInputError(body.operation ?? "lab", body.fields ?? [{ field: "request", message: body.message }]);
    case "cluster-refused":
      return new ClusterRefusedError(body.message);
    case "lab-not-found": {
      const e = new LabNotFoundError("?");
      e.message = body.message;
      return e;
    }
    default:
      return new AgentError(body);
  }
}

let nextId = 1;

/** Sends one request and waits for its answer, on a connection of its own. */
export function agentCall(socket: string, op: AgentOp, params: object, timeoutMs = 120_000): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let buffer = "";
    let connected = false;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new AgentUnavailableError(socket, `no answer to ${op} within ${Math.round(timeoutMs / 1000)} s`, connected));
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => {
      connected = true;
      conn.write(`${JSON.stringify({ id, op, params })}\n`);
    });
    conn.on("data", (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf("\n");
      if (nl === -1) return;
      clearTimeout(timer);
      conn.end();
      let response: AgentResponse;
      try {
        response = JSON.parse(buffer.slice(0, nl)) as AgentResponse;
      } catch {
        reject(new AgentError({ kind: "failed", message: "the agent sent an answer that is not JSON" }));
        return;
      }
      if (response.ok) resolve(response.result);
      else reject(toError(response.error));
    });
    conn.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new AgentUnavailableError(
          socket,
          e.code === "ENOENT" ? "no socket: the agent is not running" : e.code === "EACCES" ? "permission denied: this user is not in the console's group" : (e.code ?? e.message),
          connected,
        ),
      );
    });
    conn.on("close", () => {
      clearTimeout(timer);
      if (buffer.indexOf("\n") === -1) reject(new AgentUnavailableError(socket, connected ? `the agent closed the connection during ${op} (it may have been restarted)` : "connection closed", connected));
    });
  });
}

/**
 * What this client last sent the agent per target, so the next apply sends
 * only the farms that differ (a one-farm change at 5,000 farms: one farm,
 * not 2.5 MB). Farm objects the caller keeps unchanged are stringified once.
 */
class SentSets {
  private readonly json = new WeakMap<object, string>();
  private readonly last = new Map<string, { id: string; byName: Map<string, string> }>();

  request(target: string, farms: unknown): { params: object; byName: Map<string, string> | null } {
    if (!Array.isArray(farms) || !farms.every((f) => f !== null && typeof f === "object" && typeof (f as { name?: unknown }).name === "string")) {
      return { params: { farms }, byName: null };
    }
    const byName = new Map<string, string>();
    for (const f of farms as { name: string }[]) {
      let j = this.json.get(f);
      if (j === undefined) this.json.set(f, (j = JSON.stringify(f)));
      if (byName.has(f.name)) return { params: { farms }, byName: null }; // duplicate names: the agent's full check says so
      byName.set(f.name, j);
    }
    const prev = this.last.get(target);
    if (!prev) return { params: { farms }, byName };
    const upsert: unknown[] = [];
    for (const f of farms as { name: string }[]) if (prev.byName.get(f.name) !== byName.get(f.name)) upsert.push(f);
    const remove = [...prev.byName.keys()].filter((name) => !byName.has(name));
    return { params: { delta: { base: prev.id, upsert, remove } }, byName };
  }

  remember(target: string, id: string | undefined, byName: Map<string, string> | null) {
    if (id && byName) this.last.set(target, { id, byName });
  }

  forget(target: string) {
    this.last.delete(target);
  }
}

export function agentKernel(socket: string): KernelPort {
  const call = <T>(op: AgentOp, params: object, timeoutMs?: number) => agentCall(socket, op, params, timeoutMs) as Promise<T>;
  const sent = new SentSets();
  async function apply(farms: unknown, o: KernelApplyOptions): Promise<KernelApplyResult> {
    const target = formatTarget(o.target);
    const rest = { target, engine: o.engine, only: o.only ? [...o.only] : undefined, dryRun: o.dryRun, injectFault: o.injectFault };
    const req = sent.request(target, farms);
    try {
      const r = await call<KernelApplyResult & { setId?: string }>("apply", { ...rest, ...req.params });
      sent.remember(target, r.setId, req.byName);
      return r;
    } catch (e) {
      if (!(e instanceof AgentError && e.body.kind === "stale-set")) throw e;
      sent.forget(target);
      const r = await call<KernelApplyResult & { setId?: string }>("apply", { ...rest, farms });
      sent.remember(target, r.setId, req.byName);
      return r;
    }
  }
  const t = (target: Target) => formatTarget(target);
  const lab: LabPort = {
    up: (o) => call("lab.up", o, 300_000),
    down: (o) => call("lab.down", o),
    status: (o) => call("lab.status", o),
    traffic: (o) => call("lab.traffic", o, 600_000),
    hold: (o) => call("lab.hold", o, o.durationMs + 120_000),
    ensureVip: (o) => call("lab.ensureVip", o),
    removeVip: (o) => call("lab.removeVip", o),
    ensureClientAddresses: (o) => call("lab.ensureClientAddresses", o),
    stopBackendServer: (o) => call("lab.stopBackendServer", o),
    startBackendServer: (o) => call("lab.startBackendServer", o),
  };
  const cluster: ClusterPort = {
    status: (o) => call("cluster.status", o, 30_000),
    // A handover waits for the other node's takeover (bounded by the agent at 30 s).
    maintenance: (o) => call("cluster.maintenance", o, 60_000),
    keepalived: (o) => call("cluster.keepalived", o, 30_000),
  };
  return {
    via: "agent",
    applyFarms: apply,
    driftReport: (farms, o) => call("driftReport", { target: t(o.target), engine: o.engine, farms }),
    driftOfFarm: (target, farm, o = {}) => call("driftOfFarm", { target: t(target), engine: o.engine, farm }),
    async driftOfFarms(target, farms, o = {}) {
      const r = await call<Record<string, FarmRuleDrift>>("driftOfFarms", { target: t(target), engine: o.engine, farms });
      return new Map(Object.entries(r));
    },
    readTables: (target, o = {}) => call("readTables", { target: t(target), engine: o.engine }),
    readNatfarmTables: (target, o = {}) => call("readNatfarmTables", { target: t(target), ...o }),
    async connectionStats(target): Promise<ConnectionStats> {
      const r = await call<{ at: string; byMark: [number, MarkStats][] }>("connectionStats", { target: t(target) });
      return { at: r.at, byMark: new Map(r.byMark) };
    },
    cutConnections: (target, mark) => call("cutConnections", { target: t(target), mark }),
    resetCounters: (target, o = {}) => call("resetCounters", { target: t(target), engine: o.engine, farm: o.farm, injectFault: o.injectFault }),
    checkLocalVips: (target, farms) => call("checkLocalVips", { target: t(target), farms }, 10_000),
    async ping(timeoutMs = 5_000) {
      await call("ping", {}, timeoutMs);
    },
    lab,
    cluster,
  };
}
