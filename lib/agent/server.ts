import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import pino from "pino";
import { ApplyError, FarmValidationError } from "../applier/errors.ts";
import { validateFarms } from "../applier/apply.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import { applyValidatedWithEngine, directKernel } from "../kernel/direct.ts";
import { ClusterRefusedError } from "../cluster/maintenance.ts";
import { LabInputError } from "../lab/names.ts";
import { LabNotFoundError } from "../lab/topology.ts";
import { useNftRunner } from "../nftables/apply.ts";
import { enableNftSessions } from "../nftables/session.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { acquireFlock, LockBusyError, type HeldLock } from "../sys/flock.ts";
import { pruneStaleTargetFilesOnce } from "../applier/prune.ts";
import { FarmSets, StaleSetError } from "./farm-sets.ts";
import { AGENT_PROTOCOL, AgentRequestSchema, MAX_REQUEST_BYTES, type AgentErrorBody, type AgentRequest, type AgentResponse } from "./protocol.ts";

/**
 * natfarm's agent: the one long-running root process that runs privileged
 * programs, for the unprivileged console and health checker. It listens on a
 * Unix socket that only root and the console's group may open (the kernel
 * checks that on connect), serves only the targets and the lab it was started
 * for, and answers typed operations one JSON line at a time.
 */
export interface AgentOptions {
  socket: string;
  /** Targets the agent applies to; a request for any other is refused. */
  targets: Target[];
  /** Lab names whose operations it runs (the console's lab). */
  labs: string[];
  /** Group that may connect (the console's): the socket and its directory are made root:<gid>, 0660 / 0750. */
  gid?: number;
  /** Accept the tests' fault injection. */
  testHooks?: boolean;
}

export class AgentRequestError extends Error {
  constructor(
    readonly body: AgentErrorBody,
  ) {
    super(body.message);
  }
}

const log = pino({ name: "natfarm-agent" });

function errorBody(e: unknown): AgentErrorBody {
  if (e instanceof AgentRequestError) return e.body;
  if (e instanceof FarmValidationError) return { kind: "invalid", message: e.message, issues: e.issues };
  if (e instanceof ApplyError) {
    return { kind: "apply", message: e.message, iptablesMessage: e.iptablesMessage, rolledBack: e.rolledBack, payload: e.payload, rollbackMessage: e.rollbackMessage };
  }
  if (e instanceof LockBusyError) return { kind: "busy", message: e.message };
  if (e instanceof StaleSetError) return { kind: "stale-set", message: e.message };
  if (e instanceof LabInputError) return { kind: "lab-input", message: e.message, operation: e.operation, fields: e.issues };
  if (e instanceof LabNotFoundError) return { kind: "lab-not-found", message: e.message };
  if (e instanceof ClusterRefusedError) return { kind: "cluster-refused", message: e.message };
  return { kind: "failed", message: e instanceof Error ? e.message : String(e) };
}

function resolvedFarms(input: unknown[]): ResolvedFarm[] {
  const farms = validateFarms(input);
  const unmarked = farms.find((f) => f.backends.some((b) => b.mark === undefined));
  if (unmarked) throw new AgentRequestError({ kind: "bad-request", message: `drift needs every backend's mark: farm "${unmarked.name}" has a backend without one` });
  return farms as ResolvedFarm[];
}

export function createAgentHandler(opts: Pick<AgentOptions, "targets" | "labs" | "testHooks">) {
  const allowed = new Set(opts.targets.map(formatTarget));
  const labs = new Set(opts.labs);
  const k = directKernel;
  const sets = new FarmSets();
  const targetOf = (t: Target) => {
    if (!allowed.has(formatTarget(t))) {
      throw new AgentRequestError({ kind: "refused", message: `this agent does not serve target ${formatTarget(t)} (it serves ${[...allowed].join(", ") || "none"})` });
    }
    return t;
  };
  const labOf = <P extends { name: string }>(p: P) => {
    if (!labs.has(p.name)) throw new AgentRequestError({ kind: "refused", message: `this agent does not run lab "${p.name}" (it runs ${[...labs].join(", ") || "none"})` });
    return p;
  };

  async function run(req: AgentRequest): Promise<unknown> {
    switch (req.op) {
      case "ping":
        return { protocol: AGENT_PROTOCOL, pid: process.pid, targets: [...allowed], labs: [...labs] };
      case "apply": {
        const p = req.params;
        if (p.injectFault && !opts.testHooks) throw new AgentRequestError({ kind: "refused", message: "fault injection is a test hook this agent was not started with" });
        const t = targetOf(p.target);
        const set = p.delta ? sets.delta(p.delta.base, p.delta.upsert, p.delta.remove) : sets.full(p.farms!);
        // The farm set validated them (and re-ran the checks across farms whenever this change could affect them).
        const result = await applyValidatedWithEngine(set.farms, { target: t, engine: p.engine, only: p.only, dryRun: p.dryRun, injectFault: p.injectFault });
        return { ...result, setId: set.id };
      }
      case "driftReport":
        return k.driftReport(req.params.farms, { target: targetOf(req.params.target), engine: req.params.engine });
      case "driftOfFarm":
        return k.driftOfFarm(targetOf(req.params.target), resolvedFarms([req.params.farm])[0]!, { engine: req.params.engine });
      case "driftOfFarms":
        return Object.fromEntries(await k.driftOfFarms(targetOf(req.params.target), resolvedFarms(req.params.farms), { engine: req.params.engine }));
      case "readTables":
        return k.readTables(targetOf(req.params.target), { engine: req.params.engine });
      case "readNatfarmTables":
        return k.readNatfarmTables(targetOf(req.params.target), { farm: req.params.farm, maxRules: req.params.maxRules, translations: req.params.translations, engine: req.params.engine });
      case "connectionStats": {
        const s = await k.connectionStats(targetOf(req.params.target));
        return { at: s.at, byMark: [...s.byMark] };
      }
      case "resetCounters": {
        const p = req.params;
        if (p.injectFault && !opts.testHooks) throw new AgentRequestError({ kind: "refused", message: "fault injection is a test hook this agent was not started with" });
        return k.resetCounters(targetOf(p.target), { engine: p.engine, farm: p.farm, injectFault: p.injectFault });
      }
      case "cutConnections":
        return k.cutConnections(targetOf(req.params.target), req.params.mark);
      case "checkLocalVips":
        return k.checkLocalVips(targetOf(req.params.target), validateFarms(req.params.farms));
      case "lab.up":
        return k.lab.up(labOf(req.params));
      case "lab.down":
        return k.lab.down(labOf(req.params));
      case "lab.status":
        return k.lab.status(labOf(req.params));
      case "lab.traffic":
        return k.lab.traffic(labOf(req.params));
      case "lab.hold":
        return k.lab.hold(labOf(req.params));
      case "lab.ensureVip":
        return k.lab.ensureVip(labOf(req.params));
      case "lab.removeVip":
        return k.lab.removeVip(labOf(req.params));
      case "lab.ensureClientAddresses":
        return k.lab.ensureClientAddresses(labOf(req.params));
      case "lab.stopBackendServer":
        return k.lab.stopBackendServer(labOf(req.params));
      case "lab.startBackendServer":
        return k.lab.startBackendServer(labOf(req.params));
      case "cluster.status":
        return k.cluster!.status(labOf(req.params));
      case "cluster.maintenance":
        return k.cluster!.maintenance(labOf(req.params));
      case "cluster.keepalived": {
        const p = labOf(req.params);
        // A node's keepalived is reloaded by the agent that serves that node's kernel, not by another node's.
        targetOf({ kind: "netns", name: `${p.name}-n${p.node}` });
        return k.cluster!.keepalived(p);
      }
    }
  }

  /** One request line → one response (never throws). */
  return async function handle(line: string): Promise<AgentResponse> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return { id: 0, ok: false, error: { kind: "bad-request", message: "the request is not JSON" } };
    }
    const id = typeof (raw as { id?: unknown })?.id === "number" ? (raw as { id: number }).id : 0;
    const parsed = AgentRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`);
      return { id, ok: false, error: { kind: "bad-request", message: `bad request: ${issues.join("; ")}`, issues } };
    }
    const started = performance.now();
    try {
      const result = await run(parsed.data);
      log.info({ op: parsed.data.op, ms: Math.round(performance.now() - started) }, "ok");
      return { id, ok: true, result: result ?? null };
    } catch (e) {
      const error = errorBody(e);
      log.warn({ op: parsed.data.op, kind: error.kind, ms: Math.round(performance.now() - started), message: error.message }, "refused");
      return { id, ok: false, error };
    }
  };
}

/**
 * The nftables engine's nft calls go to warm libnftables sessions, one per
 * target (lib/nftables/session.ts), unless NATFARM_NFT_SESSION=off or the
 * library cannot be loaded: then each change is an `nft -f` process, as in
 * the CLI without an agent. The log says which serves each target.
 */
function startNftSessions(): { close(): Promise<void> } | null {
  if (process.env.NATFARM_NFT_SESSION === "off") {
    log.info({ via: "nft -f" }, "nftables engine: libnftables sessions off (NATFARM_NFT_SESSION=off)");
    return null;
  }
  const s = enableNftSessions({
    onServe: (e) => (e.via === "libnftables" ? log.info(e, "nftables engine: a libnftables session serves this target") : log.warn(e, "nftables engine: nft -f serves this target")),
  });
  useNftRunner(s.sessions.run);
  return {
    async close() {
      useNftRunner(null);
      await s.close();
    },
  };
}

/** Serves requests on `socket` until the returned close() (or the process ends). */
export async function startAgent(opts: AgentOptions): Promise<{ close(): Promise<void>; socket: string }> {
  const dir = path.dirname(opts.socket);
  fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  if (opts.gid !== undefined) fs.chownSync(dir, 0, opts.gid);
  fs.chmodSync(dir, opts.gid !== undefined ? 0o750 : 0o700);
  // One agent per socket: the lock is the kernel's, so a dead agent's socket file is simply replaced.
  let lock: HeldLock;
  try {
    lock = await acquireFlock(`${opts.socket}.lock`, { timeoutMs: 0, what: "natfarm agent" });
  } catch (e) {
    if (e instanceof LockBusyError) throw new Error(`another natfarm agent serves ${opts.socket}: ${e.message}`);
    throw e;
  }
  fs.rmSync(opts.socket, { force: true });
  // Lock, stamp and journal files of namespaces that no longer exist (each removed only under its own lock).
  void pruneStaleTargetFilesOnce().then((r) => r.removed.length && log.info({ removed: r.removed.length, busy: r.busy.length }, "removed the lock files of namespaces that are gone"));
  const sessions = startNftSessions();
  const handle = createAgentHandler(opts);
  const connections = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    connections.add(conn);
    conn.on("close", () => connections.delete(conn));
    conn.on("error", () => conn.destroy());
    let buffer = "";
    let pending = Promise.resolve();
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES && !buffer.includes("\n")) {
        const body: AgentResponse = { id: 0, ok: false, error: { kind: "bad-request", message: `request larger than ${MAX_REQUEST_BYTES} bytes: refused` } };
        conn.end(`${JSON.stringify(body)}\n`);
        buffer = "";
        conn.destroy();
        return;
      }
      let nl: number;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim() === "") continue;
        // Answers go back in request order on one connection.
        pending = pending.then(async () => {
          const response = await handle(line);
          if (!conn.destroyed) conn.write(`${JSON.stringify(response)}\n`);
        });
      }
    });
  });
  // Created with no access for anyone but root until the mode below is set.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.socket, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  if (opts.gid !== undefined) fs.chownSync(opts.socket, 0, opts.gid);
  fs.chmodSync(opts.socket, opts.gid !== undefined ? 0o660 : 0o600);
  log.info({ socket: opts.socket, targets: opts.targets.map(formatTarget), labs: opts.labs }, "natfarm agent listening");
  return {
    socket: opts.socket,
    async close() {
      for (const c of connections) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(opts.socket, { force: true });
      await sessions?.close();
      lock.release();
    },
  };
}
