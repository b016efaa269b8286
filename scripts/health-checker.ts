/**
 * natfarm's health checker: probes the backends of every farm that has a
 * health check, from the load balancer's network namespace, and takes
 * backends out of (and back into) the rule set through the farm service.
 * `npm start` runs it beside the console, already inside the namespace
 * (`ip netns exec NS setpriv --pdeathsig KILL -- node ... health-checker.ts`:
 * one process, killed by the kernel when the supervisor dies). It can also
 * run on its own:
 *
 *   npm run checker      (node --import tsx scripts/health-checker.ts; same environment as the console)
 *
 * which, when not yet in the namespace, starts itself there the same way
 * (as root only: entering a namespace is privileged, and the checker runs no
 * privileged program on anyone's behalf): the inner checker gets the
 * parent-death signal and watches its parent, so killing either process
 * leaves neither behind. Applying a state change goes through the kernel
 * port, so an unprivileged checker asks the agent.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { openDatabase } from "../lib/db/client.ts";
import { DatabaseUnreachableError } from "../lib/db/errors.ts";
import { parseConsoleEnv } from "../lib/console/env.ts";
import { HealthCheckSchema } from "../lib/farms/schema.ts";
import { clusterNodeIdentity, clusterNodeSetting, createNodeSync, nodeRole } from "../lib/cluster/node-sync.ts";
import { HealthChecker, type CheckedFarm } from "../lib/health/checker.ts";
import { createFarmService } from "../lib/service/farm-service.ts";
import { createFarmSetCache } from "../lib/service/farm-set-cache.ts";
import { createTrafficSampler } from "../lib/service/traffic-sampler.ts";
import { execArgv, PARENT_GUARD, PARENT_PID_ENV } from "../lib/supervisor/children.ts";

const log = pino({ name: "natfarm-health" });
const env = parseConsoleEnv(process.env);
const t = env.target;
if (!t.canApply) {
  log.error({ reason: t.reason }, "no target to check for");
  process.exit(2);
}

/** Whether this process already runs in network namespace `name` (same namespace inode as /run/netns/<name>). */
function inNetns(name: string): boolean {
  try {
    const mine = fs.statSync("/proc/self/ns/net");
    const theirs = fs.statSync(`/run/netns/${name}`);
    return mine.ino === theirs.ino && mine.dev === theirs.dev;
  } catch {
    return false;
  }
}

// Probes must see the backends as the balancer does: run inside its namespace.
const netns = t.target.kind === "netns" ? t.target.name : null;
if (netns && !inNetns(netns)) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot) {
    log.error({ netns }, "the checker must run inside the balancer's namespace: start it as root (npm run checker) or through npm start");
    process.exit(2);
  }
  const self = fileURLToPath(import.meta.url);
  const full = execArgv({ name: "checker", netns, argv: [process.execPath, "--import", "tsx", "--import", PARENT_GUARD, self] });
  const child = spawn(full[0]!, full.slice(1), { stdio: "inherit", env: { ...process.env, [PARENT_PID_ENV]: String(process.pid) } });
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

/** The database, or a stop that says why when it is a TCP address on loopback and this process is inside a namespace. */
async function openCheckerDatabase() {
  try {
    return await openDatabase();
  } catch (e) {
    const url = process.env.NATFARM_DATABASE_URL ?? "";
    const host = /^postgres(ql)?:/.test(url) ? new URL(url).hostname : "";
    if (netns && e instanceof DatabaseUnreachableError && /^(127\.|localhost$|\[::1\]$)/.test(host)) {
      // The balancer's namespace has a loopback of its own: nothing there listens for PostgreSQL.
      log.error(
        { netns, err: e },
        `the checker runs inside namespace ${netns}, where ${host} is not this machine's loopback: give NATFARM_DATABASE_URL the server's Unix socket instead (postgresql://USER:PASSWORD@localhost/DB?host=/var/run/postgresql; pg_hba.conf needs a "local" line with a password method for that role)`,
      );
      process.exit(1);
    }
    throw e;
  }
}

async function main() {
  const db = await openCheckerDatabase();
  const service = createFarmService({ db, target: t.target });
  const stop = new AbortController();
  // A staged apply's savepoint (lib/service/staging.ts) is watched here, a process that runs anyway:
  // unconfirmed by its deadline (kept in the database), the previous configuration comes back, even
  // with no browser open and across a console restart. One conditional UPDATE decides who rolls back.
  const savepoints = setInterval(() => {
    service
      .checkSavepoint()
      .then((r) => r && log.warn({ ok: r.ok, message: r.message }, "savepoint not confirmed in time: rolled back"))
      .catch((e) => log.error({ err: e }, "savepoint check failed"));
  }, 1000);
  stop.signal.addEventListener("abort", () => clearInterval(savepoints));
  // A cluster node (NATFARM_CLUSTER_NODE): this process also keeps the node's kernel at the shared
  // desired state (lib/cluster/node-sync.ts), and only the master changes a backend's state.
  const node = clusterNodeSetting(process.env);
  let mayChangeState: (() => string | null) | undefined;
  if (node && t.target) {
    const identity = await clusterNodeIdentity(node);
    const role = () => nodeRole(node.runDir);
    mayChangeState = () => {
      const r = role();
      return r === "master" ? null : `${identity.name} is ${r}: only the master changes a backend's state`;
    };
    const sync = createNodeSync({
      db,
      kernel: service.kernel,
      target: t.target,
      node: identity,
      role,
      // The node's keepalived follows the shared farms' VIPs too, through the node's agent.
      ...(node.lab && service.kernel.cluster ? { keepalived: (farms) => service.kernel.cluster!.keepalived({ name: node.lab!, node: node.id, farms }) } : {}),
      onApplied: (o) => log.info({ node: identity.name, ...o }, `node ${identity.name} applied revision ${o.revision}`),
      onError: (e) => log.error({ err: e, node: identity.name }, "node sync failed"),
    });
    void sync.run(stop.signal);
    log.info({ node: identity.name, cluster: identity.cluster, runDir: node.runDir }, "cluster node: syncing the shared farms into this node's kernel");
  }
  const farmSet = createFarmSetCache(db);
  const lastDetail = new Map<number, string>();

  const checker = new HealthChecker({
    mayChangeState,
    onDeferred: (change, reason) => log.info(change, `backend ${change.backend} of farm ${change.farm}: ${change.from} -> ${change.to} seen, left to the master (${reason})`),
    // Every second: the farm set cache re-reads only rows written since its last look.
    async loadFarms(): Promise<CheckedFarm[]> {
      const farms: CheckedFarm[] = [];
      for (const row of await farmSet.rows()) {
        if (!row.healthcheck || row.status !== "up") continue;
        const check = HealthCheckSchema.safeParse(JSON.parse(row.healthcheck));
        if (!check.success) {
          log.warn({ farm: row.name }, "farm has an invalid health check; skipped");
          continue;
        }
        farms.push({ name: row.name, ports: row.ports, healthcheck: check.data, backends: row.backends.map((b) => ({ mark: b.mark, ip: b.ip, port: b.port, state: b.state })) });
      }
      return farms;
    },
    async recordProbe(_farm, mark, result) {
      // Written only when the outcome changes: probes run every few seconds on every backend.
      if (lastDetail.get(mark) === result.detail) return;
      lastDetail.set(mark, result.detail);
      await db.backend.update({ where: { mark }, data: { healthDetail: result.detail, healthAt: new Date() } }).catch(() => {});
    },
    async setState(change) {
      log.info(change, `backend ${change.backend} of farm ${change.farm}: ${change.from} -> ${change.to}`);
      const r = await service.setBackendHealth(change.farm, change.mark, change.to);
      if (!r.ok) log.error({ farm: change.farm, reason: r.reason, message: r.message }, "applying the state change failed");
      // The event says what the database now holds: a change refused with nothing saved (the agent
      // down) is seen again by the next probes, and recorded once it is taken.
      const written = r.ok || r.reason === "apply-failed" || (r.reason === "unavailable" && r.saved);
      if (written) await db.healthEvent.create({ data: { farm: change.farm, backend: change.backend, mark: change.mark, from: change.from, to: change.to, detail: change.detail } });
    },
  });

  // The farm pages' traffic graphs: natfarm's counters every 10 s, totals that survive rewrites (only the master's, in a cluster).
  if (t.target) {
    const sampler = createTrafficSampler({ db, kernel: service.kernel, target: t.target, active: () => (mayChangeState?.() ?? null) === null });
    void sampler.run(stop.signal, (e) => log.warn({ err: e }, "traffic sample failed"));
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => stop.abort());
  log.info({ target: t.label }, "health checker running");
  await checker.run(stop.signal, (e) => log.error({ err: e }, "health check round failed"));
  process.exit(0);
}
