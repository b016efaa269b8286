/**
 * `npm start`: the console on a fresh, offline machine. In order:
 *   1. validate the console's environment (a bad NATFARM_TARGET stops here);
 *   2. apply pending database migrations (no network: our own runner);
 *   3. build the app if it was never built (`next build`);
 *   4. bring the lab up when the target is lab (and keep it);
 *   5. restore: re-apply the database's farms to the target (after a reboot
 *      the kernel holds nothing);
 *   6. start the health checker beside the console, and restart it if it dies;
 *   7. serve on 127.0.0.1 only (no authentication yet).
 * `--dev` serves with `next dev` instead (and skips the build).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { ConsoleEnvError, parseConsoleEnv } from "../lib/console/env.ts";
import { projectRoot } from "../lib/db/env.ts";
import { migrateDatabase } from "../lib/db/migrate.ts";
import { ensureLab } from "../lib/console/lab-service.ts";
import { createFarmService } from "../lib/console/farm-service-core.ts";
import { disconnectPrisma, openDatabase } from "../lib/db/client.ts";

const dev = process.argv.includes("--dev");
const root = projectRoot();
const nextBin = path.join(root, "node_modules", "next", "dist", "bin", "next");
const log = (s: string) => process.stdout.write(`natfarm: ${s}\n`);

function fail(message: string): never {
  process.stderr.write(`natfarm: ${message}\n`);
  process.exit(1);
}

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

async function main() {
  let env;
  try {
    env = parseConsoleEnv(process.env);
  } catch (e) {
    fail(e instanceof ConsoleEnvError ? e.message : String(e));
  }
  const childEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };

  const migrated = migrateDatabase(undefined, { log: (m) => log(m) });
  log(`database ${migrated.file}: ${migrated.applied.length ? `applied ${migrated.applied.join(", ")}` : "up to date"}`);
  for (const w of migrated.warnings) log(`warning: ${w}`);

  const distDir = path.resolve(root, process.env.NATFARM_NEXT_DIST_DIR || ".next");
  if (!dev && !buildIsFresh(distDir)) {
    log(existsSync(path.join(distDir, "BUILD_ID")) ? "the build is older than the sources: running next build" : "no build found: running next build");
    const r = spawnSync(process.execPath, [nextBin, "build"], { cwd: root, env: childEnv, stdio: "inherit" });
    if (r.status !== 0) fail(`next build failed (exit code ${r.status})`);
  }

  const t = env.target;
  if (t.kind === "lab") {
    log(`target lab: making sure lab "${t.labName}" is up (${t.labBackends} backends)`);
    const lab = await ensureLab(t);
    log(`lab ${lab.name} up: rules go to ${lab.target}, backends ${lab.backends.map((b) => b.ip).join(", ")}`);
  } else if (t.kind === "none") {
    log(`target none: ${t.reason}`);
  } else {
    log(`target ${t.label}`);
  }

  let checker: ChildProcess | null = null;
  let stopping = false;
  if (t.canApply) {
    const db = await openDatabase();
    const restored = await createFarmService({ db, target: t.target }).applyAll("restore at start");
    log(`restore: ${restored.message}`);
    await disconnectPrisma();

    const startChecker = () => {
      checker = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts", "health-checker.ts")], { cwd: root, env: childEnv, stdio: "inherit" });
      checker.on("exit", (code, signal) => {
        if (stopping) return;
        log(`health checker exited (${signal ?? `code ${code}`}): restarting it in 2 s`);
        setTimeout(startChecker, 2000);
      });
    };
    startChecker();
  }

  const args = [nextBin, dev ? "dev" : "start", "-H", env.host, "-p", String(env.port)];
  log(`serving http://localhost:${env.port} (bound to ${env.host})`);
  const child = spawn(process.execPath, args, { cwd: root, env: { ...childEnv, HOSTNAME: env.host }, stdio: "inherit" });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      stopping = true;
      checker?.kill(sig);
      child.kill(sig);
    });
  }
  child.on("exit", (code, signal) => {
    stopping = true;
    checker?.kill("SIGTERM");
    process.exit(code ?? (signal ? 128 : 1));
  });
}

main().catch((e) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
