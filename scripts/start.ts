/**
 * `npm start`: the console on a fresh, offline machine, as ONE supervisor
 * process. In order:
 *   1. read and validate the environment (a bad NATFARM_TARGET stops here);
 *   2. take this installation's locks (database, target, port; flock, no
 *      waiting): a second `npm start` stops here with the holder's pid and
 *      starts nothing; the locks are held until this process ends;
 *   3. refuse a port something else already listens on;
 *   4. install the missing Debian packages (as root on Debian), or say which;
 *   5. apply pending database migrations (no network: our own runner);
 *   6. build the app if the build is missing or older than the sources
 *      (`next build`; NATFARM_BUILD=never serves the build there is);
 *   7. bring the lab up when the target is lab (and keep it);
 *   8. restore: re-apply the database's farms to the target (after a reboot
 *      the kernel holds nothing);
 *   9. supervise the children (lib/supervisor/console.ts): the web server
 *      (scripts/web-server.ts: Next.js over HTTPS on NATFARM_HOST, default
 *      127.0.0.1, no authentication yet; its certificate is made or checked
 *      here first, handed to the console's user, and printed with the URL)
 *      and the health checker (inside the target's namespace). Any child that ends is
 *      restarted with back-off; SIGINT/SIGTERM end them all (SIGKILL after
 *      a grace period), then this process; if this process is killed, the
 *      kernel kills them (parent-death signal).
 * `--dev` serves with `next dev` (through the same server) instead, and skips the build.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { ConsoleEnvError, parseConsoleEnv, type ConsoleEnv } from "../lib/console/env.ts";
import { DatabaseEnvError, databaseEnv, projectRoot } from "../lib/db/env.ts";
import { migrate } from "../lib/db/migrate.ts";
import { DatabaseUnreachableError } from "../lib/db/errors.ts";
import type { DatabaseLocation } from "../lib/db/env.ts";
import { ensureLab } from "../lib/service/lab.ts";
import { createFarmService } from "../lib/service/farm-service.ts";
import { directKernel } from "../lib/kernel/direct.ts";
import { withEngine } from "../lib/kernel/port.ts";
import { disconnectPrisma, openDatabase } from "../lib/db/client.ts";
import { formatTarget } from "../lib/privileged/target.ts";
import { acquireFlock, type HeldLock } from "../lib/sys/flock.ts";
import { agentSocketPath } from "../lib/agent/protocol.ts";
import { consoleChildren } from "../lib/supervisor/console.ts";
import { checkReadable, ensureConsoleUser, handOver, type ConsoleUser } from "../lib/supervisor/console-user.ts";
import { AlreadyRunningError, instanceResources, lockInstance, supervisorLockDir } from "../lib/supervisor/instance-lock.ts";
import { addSystemDirsToPath, COMMANDS, ensurePackages, realDeps } from "../lib/supervisor/packages.ts";
import { portFree, portHolders } from "../lib/supervisor/port.ts";
import { Supervisor } from "../lib/supervisor/supervisor.ts";
import { WebConfigError, type WebConfig } from "../lib/web/config.ts";
import { prepareWeb, webConfigFromEnv, type PreparedWeb } from "../lib/web/prepare.ts";

const dev = process.argv.includes("--dev");
const root = projectRoot();
const nextBin = path.join(root, "node_modules", "next", "dist", "bin", "next");
const log = (s: string) => process.stdout.write(`natfarm: ${s}\n`);

function fail(message: string): never {
  process.stderr.write(`natfarm: ${message}\n`);
  process.exit(1);
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Newest modification time under the app's sources: a build older than that is stale. */
function newestSource(): number {
  let newest = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) if (e !== "node_modules" && e !== "generated" && !e.startsWith(".")) walk(path.join(p, e));
    } else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["app", "components", "lib", "public", "next.config.js", "postcss.config.mjs", "package.json", "tsconfig.json", "tsconfig.app.json"]) walk(path.join(root, p));
  return newest;
}

function buildIsFresh(distDir: string): boolean {
  try {
    return statSync(path.join(distDir, "BUILD_ID")).mtimeMs >= newestSource();
  } catch {
    return false;
  }
}

/** `next build` when needed; one build of a dist directory at a time (two at once corrupt it). */
async function ensureBuild(childEnv: NodeJS.ProcessEnv): Promise<void> {
  const policy = (process.env.NATFARM_BUILD || "auto").trim();
  if (!["auto", "never", "always"].includes(policy)) fail(`NATFARM_BUILD must be auto, never or always, got ${JSON.stringify(policy)}`);
  const distDir = path.resolve(root, process.env.NATFARM_NEXT_DIST_DIR || ".next");
  const hasBuild = () => existsSync(path.join(distDir, "BUILD_ID"));
  if (policy === "never") {
    if (!hasBuild()) fail(`NATFARM_BUILD=never but there is no build in ${distDir}: run npm run build`);
    return;
  }
  const lockFile = path.join(supervisorLockDir(), `build-${createHash("sha256").update(distDir).digest("hex").slice(0, 12)}.lock`);
  const lock = await acquireFlock(lockFile, { timeoutMs: 15 * 60_000, what: `next build of ${distDir}` });
  try {
    if (policy === "auto" && buildIsFresh(distDir)) return;
    log(policy === "always" ? "NATFARM_BUILD=always: running next build" : hasBuild() ? "the build is older than the sources: running next build" : "no build found: running next build");
    // The kernel ends the build if this process dies meanwhile.
    const r = spawnSync("setpriv", ["--pdeathsig", "KILL", "--", process.execPath, nextBin, "build"], { cwd: root, env: childEnv, stdio: "inherit" });
    if (r.status !== 0) fail(`next build failed (${r.error ? r.error.message : `exit code ${r.status ?? r.signal}`})`);
  } finally {
    lock.release();
  }
}

async function main() {
  // 1. Configuration: read only, nothing started yet.
  let env: ConsoleEnv;
  let database: DatabaseLocation;
  let webConfig: WebConfig;
  try {
    env = parseConsoleEnv(process.env);
    database = databaseEnv();
    webConfig = webConfigFromEnv({ ...process.env, PORT: String(env.port) }, { root, dev });
  } catch (e) {
    fail(e instanceof ConsoleEnvError || e instanceof DatabaseEnvError || e instanceof WebConfigError ? e.message : errorText(e));
  }
  const t = env.target;
  const targetLabel = t.canApply ? formatTarget(t.target) : null;
  const isRoot = process.getuid?.() === 0;
  const agentSocket = agentSocketPath();
  // SQLite: the same file reached through a symlinked directory is the same installation.
  // PostgreSQL is shared by design (every node of a cluster uses it): what must
  // not run twice on this machine is a supervisor of that database for one target.
  const dbKey =
    database.provider === "sqlite"
      ? path.join(realpathSync(path.dirname(database.file)), path.basename(database.file))
      : `${database.label} for target ${targetLabel ?? "none"}`;

  // 2. One supervisor per installation, decided before anything acts.
  let locks: HeldLock[];
  try {
    locks = await lockInstance(
      instanceResources({ databaseFile: dbKey, target: targetLabel, port: env.port, agentSocket: isRoot ? agentSocket : undefined }),
      `natfarm supervisor: database ${database.label}, target ${targetLabel ?? "none"}, port ${env.port}`,
    );
  } catch (e) {
    fail(e instanceof AlreadyRunningError ? e.message : `could not take the instance lock: ${errorText(e)}`);
  }

  // 3. A port held by something else would only give a web server restarted forever.
  let free = await portFree(webConfig.host, env.port);
  // Nobody listens but the bind fails: sockets of a server that just died are still closing.
  for (let i = 0; !free && i < 30 && portHolders(env.port).length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    free = await portFree(webConfig.host, env.port);
  }
  if (!free) {
    const holders = portHolders(env.port);
    fail(
      `port ${env.port} is already in use${holders.length ? ` by ${holders.map((h) => `pid ${h.pid} (${h.command.slice(0, 120)})`).join(", ")}` : ""}: ` +
        `stop it or choose another PORT`,
    );
  }

  // 4. The commands this start will run.
  const purpose = t.canApply ? "start" : "start-no-target";
  const packages = await ensurePackages(purpose, realDeps(log));
  if (!packages.ok) fail(packages.message);
  addSystemDirsToPath(COMMANDS[purpose]);

  const childEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };

  // 5. Database.
  const migrated = await migrate(undefined, { log: (m) => log(m) }).catch((e: unknown) => fail(e instanceof DatabaseUnreachableError ? e.message : errorText(e)));
  log(`database ${migrated.file}: ${migrated.applied.length ? `applied ${migrated.applied.join(", ")}` : "up to date"}`);
  for (const w of migrated.warnings) log(`warning: ${w}`);

  // 6. Build.
  if (!dev) await ensureBuild(childEnv);

  // 7. Target.
  if (t.kind === "lab") {
    log(`target lab: making sure lab "${t.labName}" is up (${t.labBackends} backends)`);
    const lab = await ensureLab(t, directKernel);
    log(`lab ${lab.name} up: rules go to ${lab.target}, backends ${lab.backends.map((b) => b.ip).join(", ")}`);
  } else if (t.kind === "none") {
    log(`target none: ${t.reason}`);
  } else {
    log(`target ${t.label}`);
  }

  // 8. Restore.
  if (t.canApply) {
    const db = await openDatabase();
    // Before the agent runs, as root: the supervisor's own start-up steps reach the kernel directly.
    // With the configured engine: a start on the other engine than last time moves the farms over (lib/kernel/direct.ts).
    const restored = await createFarmService({ db, target: t.target, kernel: withEngine(directKernel, env.engine) }).applyAll("restore at start");
    log(`restore: ${restored.message}`);
    await disconnectPrisma();
  }

  // The first administrator: with no user yet, a one-time setup link (printed with the URL below).
  const setupToken = await (await import("../lib/auth/setup.ts")).makeSetupToken(await openDatabase()).finally(() => disconnectPrisma());

  // 9. Privileges: as root, only the agent keeps them; the web server and the checker run as the console's user.
  let user: ConsoleUser | undefined;
  if (isRoot) {
    try {
      user = await ensureConsoleUser(process.env.NATFARM_USER || "natfarm", log);
      const unreadable = await checkReadable(root, user);
      if (unreadable) fail(unreadable);
      handOver(database.dataDir, user);
      handOver(path.resolve(root, process.env.NATFARM_NEXT_DIST_DIR || ".next", "cache"), user);
    } catch (e) {
      fail(`could not set up the console's user: ${errorText(e)}`);
    }
    log(`the web server and the health checker run as ${user.name} (uid ${user.uid}); the agent (root) serves them on ${agentSocket}`);
  }

  // The web server's certificate, made (or checked) before it starts and handed to its user: its fingerprint goes with the URL.
  let web: PreparedWeb;
  try {
    web = await prepareWeb(webConfig, { owner: user ? { uid: user.uid, gid: user.gid } : undefined });
  } catch (e) {
    fail(`web server: ${errorText(e)}`);
  }

  // 10. Supervise.
  const supervisor = new Supervisor(consoleChildren({ root, env, dev, user, agentSocket, testHooks: process.env.NATFARM_TEST_HOOKS === "1" }), { log, env: childEnv });
  let exitCode = 0;
  let stopping = false;
  const shutdown = (why: string) => {
    if (stopping) {
      log(`${why} again: killing the children now`);
      supervisor.hurry();
      return;
    }
    stopping = true;
    log(`${why}: stopping`);
    void supervisor.stop().finally(() => {
      for (const l of locks) l.release();
      log("stopped");
      process.exit(exitCode);
    });
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => shutdown(sig));
  process.on("uncaughtException", (e) => {
    process.stderr.write(`natfarm: supervisor error: ${e.stack ?? e.message}\n`);
    exitCode = 1;
    shutdown("supervisor error");
  });
  log(`${web.summary}; supervisor pid ${process.pid}`);
  if (setupToken) log(`no user yet: create the first administrator at ${web.url}/setup?token=${setupToken} (works once; or: natfarm user add NAME --role admin --password-stdin)`);
  supervisor.start();
}

main().catch((e) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
