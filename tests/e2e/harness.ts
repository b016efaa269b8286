import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { readTables, type TablesSnapshot } from "../../lib/applier/index.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createTestDatabase } from "../helpers/db.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { createUser } from "../../lib/auth/users.ts";
import type { LabInfo } from "../../lib/lab/index.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { startAgent } from "../helpers/agent.ts";
import { request } from "../../lib/web/client.ts";
import { createTestLab, destroyTestLab } from "../helpers/lab.ts";

/**
 * The browser end-to-end harness: the real console (`next build`, served by
 * natfarm's own HTTPS server, scripts/web-server.ts, as `npm start` serves
 * it) on 127.0.0.1 with a throwaway SQLite database, its self-signed
 * certificate beside it, and its own lab, driven by Debian's Chromium
 * through playwright-core.
 *
 * Everything it creates is removed in stop(), also when a test failed: the
 * server's process group, the lab's namespaces (tests/helpers/lab.ts also
 * sweeps them on exit and at the next run), the temp directory.
 */

export const ROOT = path.resolve(import.meta.dirname, "..", "..");
const NEXT_BIN = path.join(ROOT, "node_modules", "next", "dist", "bin", "next");
export const WEB_SERVER = path.join(ROOT, "scripts", "web-server.ts");

/**
 * Where the browser tests put their screenshots: test-results/screenshots
 * (git-ignored) on an ordinary run, so `npm test` leaves the work tree clean;
 * the README's docs/screenshots only when NATFARM_UPDATE_SCREENSHOTS=1 asks
 * for them to be refreshed.
 */
export function screenshotDir(env: Record<string, string | undefined> = process.env): string {
  return env.NATFARM_UPDATE_SCREENSHOTS === "1" ? path.join(ROOT, "docs", "screenshots") : path.join(ROOT, "test-results", "screenshots");
}

/** Files whose change makes a build stale. */
const SOURCE_DIRS = ["app", "components", "lib", "public"];
const SOURCE_FILES = ["next.config.js", "package.json", "package-lock.json", "postcss.config.mjs", "tsconfig.json"];

function newestMtime(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, entry)));
  return newest;
}

/** The build directory next.config.js picks: a second one lets two developers (or helpers) of one checkout build and serve side by side. */
const DIST_DIR = process.env.NATFARM_NEXT_DIST_DIR || ".next";

function buildIsFresh(): boolean {
  let built: number;
  try {
    built = fs.statSync(path.join(ROOT, DIST_DIR, "BUILD_ID")).mtimeMs;
  } catch {
    return false;
  }
  const newest = Math.max(...SOURCE_DIRS.map((d) => newestMtime(path.join(ROOT, d))), ...SOURCE_FILES.map((f) => newestMtime(path.join(ROOT, f))));
  return newest < built;
}

/** Another `next build` of this checkout (a developer's, another run's): two at once corrupt .next. */
function otherBuildRunning(): boolean {
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const isNextBuild = cmd.some((a) => /(^|\/)next$/.test(a)) && cmd.includes("build");
      const theirDist = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((e) => e.startsWith("NATFARM_NEXT_DIST_DIR="))?.slice(22) || ".next";
      if (isNextBuild && fs.readlinkSync(`/proc/${pid}/cwd`) === ROOT && theirDist === DIST_DIR) return true;
    } catch {
      /* the process ended meanwhile */
    }
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `next build` unless .next holds a build newer than every source file.
 * NATFARM_E2E_BUILD=always forces a build, =never trusts whatever is there.
 */
export async function ensureBuild(log: (m: string) => void = () => {}): Promise<{ built: boolean; ms: number }> {
  const started = performance.now();
  const policy = process.env.NATFARM_E2E_BUILD ?? "auto";
  for (let waited = 0; otherBuildRunning() && waited < 300_000; waited += 2000) await sleep(2000);
  if (policy === "never" || (policy !== "always" && buildIsFresh())) return { built: false, ms: performance.now() - started };
  log("next build ...");
  const r = spawnSync(process.execPath, [NEXT_BIN, "build"], {
    cwd: ROOT,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
    encoding: "utf8",
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    // Turbopack's warnings are long: keep the lines that say what failed, then the end.
    const lines = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
    const errors = lines.filter((l) => /error|failed/i.test(l)).slice(0, 40);
    throw new Error(`next build failed (exit ${r.status ?? r.signal}):\n${errors.join("\n")}\n...\n${lines.slice(-40).join("\n")}`);
  }
  return { built: true, ms: performance.now() - started };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The users every console of this harness has (created in its database
 * before the server starts, with lib/auth as `natfarm user add` does); the
 * browser is logged in as `admin` through the login form unless asked
 * otherwise.
 */
export const E2E_USERS = {
  admin: { name: "admin", password: "admin-password-e2e", role: "admin" },
  operator: { name: "oper", password: "operator-password-e2e", role: "operator" },
  viewer: { name: "vera", password: "viewer-password-e2e", role: "viewer" },
} as const;
export type E2eUser = keyof typeof E2E_USERS;

/** Logs `page` in through the console's login form (a real login request) and waits for the farms page. */
export async function loginThroughForm(page: Page, baseUrl: string, name: string, password: string): Promise<void> {
  // A page already on its way to /login by itself (its session ended) aborts this navigation: go again.
  await page.goto(`${baseUrl}/login`).catch(async (e: Error) => {
    if (!/ERR_ABORTED/.test(e.message)) throw e;
    await page.goto(`${baseUrl}/login`);
  });
  await page.getByLabel("User name").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 20_000 });
}

export interface Console {
  baseUrl: string;
  /** The console's self-signed certificate (PEM), to trust in requests. */
  ca: string | null;
  lab: LabInfo;
  /** The lab's load balancer, where the console applies. */
  target: Target;
  dir: string;
  /** the SQLite file ("" on PostgreSQL: vitest's postgresql project, tests/helpers/db.ts) */
  dbFile: string;
  /** NATFARM_DATABASE_URL the console runs with */
  dbUrl: string;
  /** The same database for a process inside the lab's namespaces (the health checker enters the balancer's): PostgreSQL through its Unix socket. */
  dbNetnsUrl: string;
  faultFile: string;
  serverLog: string;
  context: BrowserContext;
  page: Page;
  timings: Record<string, number>;
  /** The server's output so far (for failure messages). */
  logTail(chars?: number): string;
  /** mangle + nat of the lab's load balancer, read directly (not through the console). */
  tables(): Promise<TablesSnapshot>;
  /** Rows of the console's database, read directly (SQLite's SQL; on PostgreSQL mixed-case names are quoted and ? numbered). */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): T[];
  /** Clears the browser's cookies and logs in as one of E2E_USERS through the form. */
  loginAs(user: E2eUser): Promise<void>;
  /** The `Cookie` header the browser sends to the console now. */
  cookieHeader(): Promise<string>;
  stop(): Promise<void>;
}

async function waitForHttp(url: string, child: ChildProcess, logFile: string, timeoutMs: number, ca?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the web server exited (${child.exitCode ?? child.signalCode}):\n${fs.readFileSync(logFile, "utf8").slice(-4000)}`);
    }
    try {
      const res = await request(url, { ca, servername: ca ? "localhost" : undefined, timeoutMs: 30_000 });
      if (res.status < 500) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(300);
  }
  throw new Error(`the console did not answer at ${url} within ${timeoutMs} ms (${last}):\n${fs.readFileSync(logFile, "utf8").slice(-4000)}`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  killGroup(child, "SIGTERM");
  const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
  if (!done) {
    killGroup(child, "SIGKILL");
    await Promise.race([exited, sleep(5000)]);
  }
}

/**
 * Servers this harness started are recorded (pid of the server's process
 * group, pid of the test process that owns it). A run killed before its
 * teardown leaves its server behind: the next run ends those groups, and
 * only those, whose owner is gone.
 */
const SERVERS_DIR = path.join(os.tmpdir(), "natfarm-e2e-servers");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sweepStaleServers(): number[] {
  const ended: number[] = [];
  let files: string[] = [];
  try {
    files = fs.readdirSync(SERVERS_DIR);
  } catch {
    return ended;
  }
  for (const f of files) {
    const file = path.join(SERVERS_DIR, f);
    try {
      const { pid, owner, started } = JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; owner: number; started: string };
      if (alive(owner)) continue;
      // Still the server we started? Same pid AND same start time (a recycled pid must not be killed).
      if (startTime(pid) === started) {
        process.kill(-pid, "SIGKILL");
        ended.push(pid);
      }
      fs.rmSync(file, { force: true });
    } catch {
      fs.rmSync(file, { force: true });
    }
  }
  return ended;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null when the process is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function recordServer(pid: number): () => void {
  fs.mkdirSync(SERVERS_DIR, { recursive: true });
  const file = path.join(SERVERS_DIR, `${pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ pid, owner: process.pid, started: startTime(pid) }));
  return () => fs.rmSync(file, { force: true });
}

/** A console web server started by startWebServer(): its own process group, recorded for the sweep. */
export interface WebServer {
  child: ChildProcess;
  pid: number;
  /** What the server printed: `https://localhost:PORT` and the like. */
  url: string;
  /** SHA-256 fingerprint of its certificate, as it printed it. */
  fingerprint: string | null;
  /** Its certificate (PEM), to trust exactly it; null for plain HTTP. */
  ca: string | null;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

/** The environment a server starts from: this process's, without vitest's own and without any web setting of the caller's shell. */
export function serverBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("VITEST") || k === "NODE_ENV" || k === "TEST") continue;
    if (/^NATFARM_(HOST|TLS|TLS_CERT|TLS_KEY|TLS_DIR|ALLOWED_HOSTS)$/.test(k) || k === "PORT" || k === "HOSTNAME") continue;
    env[k] = v;
  }
  return env;
}

/**
 * Starts scripts/web-server.ts (the console's HTTPS server, as `npm start`
 * runs it) with `env` on top of serverBaseEnv(), optionally inside network
 * namespace `netns` (`ip netns exec` execs: the pid is the server itself),
 * and waits for its "serving" line (printed once Next.js is ready and the
 * port listens). The certificate is read from the TLS directory it names.
 */
export async function startWebServer(o: { env: Record<string, string>; logFile: string; netns?: string; timeoutMs?: number; dev?: boolean }): Promise<WebServer> {
  const out = fs.openSync(o.logFile, "a");
  const argv = [process.execPath, "--import", "tsx", WEB_SERVER, ...(o.dev ? ["--dev"] : [])];
  const full = o.netns ? ["ip", "netns", "exec", o.netns, ...argv] : argv;
  const child: ChildProcess = spawn(full[0]!, full.slice(1), {
    cwd: ROOT,
    detached: true, // its own process group: stop() ends the server and anything it spawned
    stdio: ["ignore", out, out],
    env: { ...serverBaseEnv(), NEXT_TELEMETRY_DISABLED: "1", NATFARM_HOST: "127.0.0.1", ...o.env } as unknown as NodeJS.ProcessEnv,
  });
  fs.closeSync(out);
  const forget = recordServer(child.pid!);
  // Last resort when the test process exits without its teardown (Ctrl-C, a crash): synchronous.
  const onExit = () => killGroup(child, "SIGKILL");
  process.once("exit", onExit);
  const log = () => {
    try {
      return fs.readFileSync(o.logFile, "utf8");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    await stopServer(child);
    process.off("exit", onExit);
    forget();
  };
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  try {
    for (;;) {
      const m = /natfarm web: serving (\S+) .*?(?:(?:self-signed )?certificate (\S+?)(?: \(made now[^)]*\))?, SHA-256 fingerprint ([0-9A-F:]+)|plain HTTP)/.exec(log());
      if (m) {
        return { child, pid: child.pid!, url: m[1]!, fingerprint: m[3] ?? null, ca: m[2] ? fs.readFileSync(m[2], "utf8") : null, logFile: o.logFile, log, stop };
      }
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the web server exited (${child.exitCode ?? child.signalCode}):\n${log().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`the web server did not start within ${o.timeoutMs ?? 120_000} ms:\n${log().slice(-4000)}`);
      await sleep(200);
    }
  } catch (e) {
    await stop();
    throw e;
  }
}

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Builds if needed, brings up a lab, migrates a fresh database, starts the
 * console against both and opens Chromium. Anything started before a failure
 * is torn down before the error is rethrown.
 */
export async function startConsole(opts: { backends?: number; log?: (m: string) => void; env?: Record<string, string>; login?: E2eUser | null } = {}): Promise<Console> {
  const log = opts.log ?? (() => {});
  const timings: Record<string, number> = {};
  const cleanups: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    const errors: unknown[] = [];
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, "e2e teardown failed");
  };

  try {
    const build = await ensureBuild(log);
    timings.buildMs = build.ms;
    timings.built = build.built ? 1 : 0;

    sweepStaleServers();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-e2e-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const testDb = await createTestDatabase("e2e");
    cleanups.push(() => testDb.drop());
    const dbFile = testDb.file ?? "";
    const dbUrl = testDb.url;
    const dbNetnsUrl = await testDb.netnsUrl();
    const faultFile = path.join(dir, "fault");
    const serverLog = path.join(dir, "server.log");
    await migrate(dbUrl);
    for (const u of Object.values(E2E_USERS)) await createUser(getPrisma(dbUrl), u.name, u.role, u.password);
    await disconnectPrisma(dbUrl);

    let t = performance.now();
    const lab = await createTestLab({ backends: opts.backends ?? 2, prefix: "e2e" });
    cleanups.push(() => destroyTestLab(lab.name));
    timings.labUpMs = performance.now() - t;
    const target: Target = { kind: "netns", name: lab.lbNs };

    // The console reaches the kernel as npm start's does: through an agent serving this lab only.
    const agentSocket = path.join(dir, "agent", "agent.sock");
    const agent = await startAgent({ socket: agentSocket, target, lab: lab.name, logFile: path.join(dir, "agent.log") });
    cleanups.push(() => agent.stop());

    const port = await freePort();
    const baseUrl = `https://127.0.0.1:${port}`;
    t = performance.now();
    const server = await startWebServer({
      logFile: serverLog,
      env: {
        PORT: String(port),
        NATFARM_HOST: "127.0.0.1",
        NATFARM_DATABASE_URL: dbUrl,
        NATFARM_TARGET: "lab",
        NATFARM_LAB_NAME: lab.name,
        NATFARM_LAB_BACKENDS: String(lab.backends.length),
        NATFARM_FAULT_FILE: faultFile,
        NATFARM_AGENT_SOCKET: agentSocket,
        ...opts.env,
      },
    });
    cleanups.push(() => server.stop());
    await waitForHttp(`${baseUrl}/`, server.child, serverLog, 90_000, server.ca ?? undefined);
    timings.serverStartMs = performance.now() - t;

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-e2e-chromium-"));
    cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
    t = performance.now();
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.NATFARM_E2E_CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      locale: "en-US",
      timezoneId: "UTC",
      // The console's self-signed certificate, made for this run.
      ignoreHTTPSErrors: true,
    });
    cleanups.push(() => context.close());
    // Only ever the local console: anything else is refused, not fetched.
    await context.route(
      (url) => !url.href.startsWith(`${baseUrl}/`) && url.protocol !== "data:" && url.protocol !== "blob:",
      (route) => route.abort("blockedbyclient"),
    );
    timings.browserMs = performance.now() - t;
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);

    let db: Database.Database | null = null;
    cleanups.push(() => void db?.close());
    const loginAs = async (user: E2eUser) => {
      // Leave the open page first: with its cookie gone, its next poll would get 401 and send it to
      // /login by itself, racing (and aborting) the navigation below.
      await page.goto("about:blank");
      await context.clearCookies();
      await loginThroughForm(page, baseUrl, E2E_USERS[user].name, E2E_USERS[user].password);
    };
    const login = opts.login === undefined ? "admin" : opts.login;
    if (login) await loginAs(login);

    return {
      baseUrl,
      ca: server.ca ?? null,
      lab,
      target,
      dir,
      dbFile,
      dbUrl,
      dbNetnsUrl,
      faultFile,
      serverLog,
      context,
      page,
      timings,
      logTail: (chars = 4000) => {
        try {
          return fs.readFileSync(serverLog, "utf8").slice(-chars);
        } catch {
          return "";
        }
      },
      tables: () => readTables(target),
      query<T>(sql: string, ...params: unknown[]): T[] {
        if (testDb.kind === "postgresql") return testDb.query<T>(sql, ...params);
        db ??= new Database(dbFile, { readonly: true, fileMustExist: true });
        return db.prepare(sql).all(...params) as T[];
      },
      loginAs,
      cookieHeader: async () => (await context.cookies(baseUrl)).map((c) => `${c.name}=${c.value}`).join("; "),
      stop,
    };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

/** Namespaces whose name starts with `<lab>-` (after stop() there must be none). */
export function namespacesOf(labName: string): string[] {
  const r = spawnSync("ip", ["-j", "netns", "list"], { encoding: "utf8" });
  const list = JSON.parse(r.stdout.trim() || "[]") as { name: string }[];
  return list.map((n) => n.name).filter((n) => n.startsWith(`${labName}-`));
}
