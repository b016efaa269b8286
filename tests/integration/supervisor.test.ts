import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { migrateDatabase } from "../../lib/db/migrate.ts";
import { labEnsureVip, labStartBackendServer, labStopBackendServer } from "../../lib/lab/index.ts";
import { readLockHolder } from "../../lib/sys/flock.ts";
import { parseConsoleEnv } from "../../lib/console/env.ts";
import { execArgv, type ChildSpec } from "../../lib/supervisor/children.ts";
import { consoleChildren } from "../../lib/supervisor/console.ts";
import { instanceResources } from "../../lib/supervisor/instance-lock.ts";
import { COMMANDS, ensurePackages, type EnsureDeps } from "../../lib/supervisor/packages.ts";
import { DEFAULT_BACKOFF, nextDelay } from "../../lib/supervisor/supervisor.ts";
import { ensureBuild, freePort } from "../e2e/harness.ts";
import { request } from "../../lib/web/client.ts";
import { agentCall } from "../../lib/agent/client.ts";
import { login, sessionCookieName } from "../../lib/auth/sessions.ts";
import { createUser } from "../../lib/auth/users.ts";
import { createTestLab, destroyTestLab } from "../helpers/lab.ts";

/**
 * `npm start` as one supervisor, with real processes: the real start script
 * on a throwaway database, a free port and its own lab, killed piece by piece
 * with SIGKILL. Everything is observed from outside, through /proc: who
 * listens on the port, which processes run the checker, whose parent is
 * whose, which namespace they are in. Every process the file starts carries
 * a marker in its environment (inherited by everything below it), so the
 * clean-up finds and ends them all, also when a test fails.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const START = path.join(ROOT, "scripts", "start.ts");
const CHECKER = path.join(ROOT, "scripts", "health-checker.ts");
const RUN = `sup${randomBytes(4).toString("hex")}`;
const MARK = "NATFARM_SUPERVISOR_TEST";
const VIP = "198.51.100.71";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- /proc, read independently of the code under test

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  cmdline: string[];
}

function proc(pid: number): Proc | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, state: f[0]!, ppid: Number(f[1]), pgid: Number(f[2]), cmdline };
  } catch {
    return null;
  }
}

/** Alive = exists and is not a zombie (an exited process waiting for its parent to reap it). */
const alive = (pid: number) => {
  const p = proc(pid);
  return p !== null && p.state !== "Z";
};

function allProcs(): Proc[] {
  return fs
    .readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map((e) => proc(Number(e)))
    .filter((p): p is Proc => p !== null && p.state !== "Z");
}

function environ(pid: number): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const kv of fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
      const i = kv.indexOf("=");
      if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return out;
  } catch {
    return {};
  }
}

/** Live processes whose environment carries this file's marker (value prefix). */
function marked(prefix = RUN): Proc[] {
  return allProcs().filter((p) => p.pid !== process.pid && (environ(p.pid)[MARK] ?? "").startsWith(prefix));
}

function descendants(pid: number): Proc[] {
  const procs = allProcs();
  const out: Proc[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const kids = procs.filter((p) => frontier.includes(p.ppid));
    out.push(...kids);
    frontier = kids.map((k) => k.pid);
  }
  return out;
}

/** Pids holding a socket that listens on TCP `port` (root namespace: this process's). */
function listeners(port: number): number[] {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of fs.readFileSync(file, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A" && parseInt(f[1]!.split(":")[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (!inodes.size) return [];
  return allProcs()
    .filter((p) => fds(p.pid).some((l) => inodes.has(/^socket:\[(\d+)\]$/.exec(l)?.[1] ?? "")))
    .map((p) => p.pid);
}

function fds(pid: number): string[] {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return "";
      }
    });
  } catch {
    return [];
  }
}

const netnsInode = (file: string) => {
  try {
    return fs.statSync(file).ino;
  } catch {
    return null;
  }
};

/** Processes running the health checker script (after any exec: their own command line). */
const checkers = (prefix = RUN) => marked(prefix).filter((p) => p.cmdline.some((a) => a === CHECKER));

async function until<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, ms = 30_000, context: () => string = () => ""): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await sleep(100);
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", (e) => {
      console.log(`[supervisor] port ${port}: ${(e as Error).message}`);
      resolve(false);
    });
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await request(url, { insecure: true, timeoutMs: 10_000 })).status < 500;
  } catch {
    return false;
  }
}

/** The real uid of a process, from /proc/<pid>/status. */
function uidOf(pid: number): number | null {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- supervisors started by this file

interface Started {
  child: ChildProcess;
  pid: number;
  tag: string;
  logFile: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
}

const started: Started[] = [];
let dir = "";

/** The environment a supervisor gets: this process's, without vitest's own. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VITEST") && k !== "NODE_ENV" && k !== "TEST") env[k] = v;
  return env as NodeJS.ProcessEnv;
}

function startSupervisor(name: string, env: Record<string, string>): Started {
  const tag = `${RUN}-${name}`;
  const logFile = path.join(dir, `${name}.log`);
  const out = fs.openSync(logFile, "a");
  const child = spawn(process.execPath, ["--import", "tsx", START], {
    cwd: ROOT,
    env: { ...baseEnv(), NATFARM_BUILD: "never", NATFARM_HOST: "127.0.0.1", ...env, [MARK]: tag } as NodeJS.ProcessEnv,
    stdio: ["ignore", out, out],
  });
  fs.closeSync(out);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const s: Started = { child, pid: child.pid!, tag, logFile, exit, log: () => fs.readFileSync(logFile, "utf8") };
  started.push(s);
  return s;
}

function killAllMarked(): void {
  for (const s of started) {
    try {
      process.kill(s.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const p of marked()) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}
// A run that ends without its afterAll (Ctrl-C, a crash) still ends what it started.
process.on("exit", killAllMarked);

// ---------------------------------------------------------------- pure parts

describe("supervisor building blocks", () => {
  it("wraps a child as [ip netns exec NS] setpriv [ids] --pdeathsig KILL -- argv: the death signal set after the uid drop", () => {
    const spec: ChildSpec = { name: "x", argv: ["/usr/bin/node", "a.js"] };
    expect(execArgv(spec)).toEqual(["setpriv", "--pdeathsig", "KILL", "--", "/usr/bin/node", "a.js"]);
    expect(execArgv({ ...spec, netns: "lab-lb", user: { name: "natfarm", group: "natfarm" } })).toEqual([
      "ip", "netns", "exec", "lab-lb",
      "setpriv", "--reuid", "natfarm", "--regid", "natfarm", "--init-groups", "--pdeathsig", "KILL", "--", "/usr/bin/node", "a.js",
    ]);
  });

  it("the console's children are data: the web server always, the checker in the target's namespace when it can apply", () => {
    const children = (vars: Record<string, string>, root: boolean) =>
      consoleChildren({ root: "/app", env: parseConsoleEnv(vars, root), dev: false, node: "/usr/bin/node", isRoot: root }).map((c) => ({
        name: c.name,
        netns: c.netns ?? null,
        argv: execArgv(c).join(" "),
      }));
    const lab = children({ NATFARM_TARGET: "lab", NATFARM_LAB_NAME: "x1", PORT: "3100" }, true);
    expect(lab.map((c) => [c.name, c.netns])).toEqual([["web", null], ["checker", "x1-lb"]]);
    expect(lab[0]!.argv).toMatch(/^setpriv --pdeathsig KILL -- \/usr\/bin\/node --import tsx --import \S+parent-guard\.mjs \/app\/scripts\/web-server\.ts$/);
    expect(lab[1]!.argv).toMatch(/^ip netns exec x1-lb setpriv --pdeathsig KILL -- \/usr\/bin\/node --import tsx --import \S+parent-guard\.mjs \/app\/scripts\/health-checker\.ts$/);
    expect(children({ NATFARM_TARGET: "none" }, true).map((c) => c.name)).toEqual(["web"]);
    expect(children({ NATFARM_TARGET: "host" }, true).map((c) => [c.name, c.netns])).toEqual([["web", null], ["checker", null]]);
    // Not root: `ip netns exec` would be refused; the checker goes through sudo itself.
    expect(children({ NATFARM_TARGET: "netns:n1" }, false).map((c) => [c.name, c.netns])).toEqual([["web", null], ["checker", null]]);
  });

  it("backs off 0.5 s doubling to 30 s, and starts over after a run that lasted", () => {
    const delays: number[] = [];
    let d: number | null = null;
    for (let i = 0; i < 9; i++) delays.push((d = nextDelay(d, 100)));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(nextDelay(30000, DEFAULT_BACKOFF.resetAfterMs)).toBe(500);
  });

  it("one lock per resource two copies would fight over: database, target, port", () => {
    const a = instanceResources({ databaseFile: "/d/a.db", target: "netns:x-lb", port: 3000, lockDir: "/l" });
    const b = instanceResources({ databaseFile: "/d/b.db", target: "netns:y-lb", port: 3001, lockDir: "/l" });
    expect(a.map((r) => r.label)).toEqual(["database /d/a.db", "target netns:x-lb", "port 3000"]);
    for (let i = 0; i < 3; i++) expect(a[i]!.file).not.toBe(b[i]!.file);
    expect(instanceResources({ databaseFile: "/d/a.db", target: null, port: 3000, lockDir: "/l" }).map((r) => r.label)).toEqual(["database /d/a.db", "port 3000"]);
  });

  describe("Debian packages", () => {
    const fake = (present: string[], over: Partial<EnsureDeps> = {}) => {
      const calls: string[][] = [];
      const logs: string[] = [];
      const have = new Set(present);
      const deps: EnsureDeps = {
        isRoot: true,
        hasAptGet: true,
        find: (c) => (have.has(c) ? "/usr/bin" : null),
        run: async (argv) => {
          calls.push(argv);
          if (argv[1] === "install") for (const c of COMMANDS.test) have.add(c);
          return { code: 0, stderr: "" };
        },
        aptListsPresent: () => true,
        log: (m) => logs.push(m),
        ...over,
      };
      return { deps, calls, logs };
    };

    it("everything present: no apt call at all", async () => {
      const f = fake([...COMMANDS.test]);
      expect(await ensurePackages("test", f.deps)).toEqual({ ok: true, installed: [] });
      expect(f.calls).toEqual([]);
    });

    it("as root on Debian: one apt-get install line with exactly the missing packages", async () => {
      const f = fake(["flock", "setpriv", "ip", "sysctl", "kill", "ps"]);
      expect(await ensurePackages("test", f.deps)).toEqual({ ok: true, installed: ["chromium", "conntrack", "conntrackd", "iptables", "keepalived", "nftables"] });
      expect(f.calls).toEqual([["apt-get", "install", "-y", "--no-install-recommends", "chromium", "conntrack", "conntrackd", "iptables", "keepalived", "nftables"]]);
      expect(f.logs).toContain("apt-get install -y --no-install-recommends chromium conntrack conntrackd iptables keepalived nftables");
    });

    it("no package lists yet, or lists that do not know the package: apt-get update first", async () => {
      const fresh = fake(["flock", "setpriv"], { aptListsPresent: () => false });
      expect((await ensurePackages("start", fresh.deps)).ok).toBe(true);
      expect(fresh.calls.map((c) => c[1])).toEqual(["update", "install"]);

      let first = true;
      const stale = fake(["flock", "setpriv"]);
      const run = stale.deps.run;
      stale.deps.run = async (argv) => {
        if (argv[1] === "install" && first) {
          first = false;
          stale.calls.push(argv);
          return { code: 100, stderr: "E: Unable to locate package conntrack" };
        }
        return run(argv);
      };
      expect((await ensurePackages("start", stale.deps)).ok).toBe(true);
      expect(stale.calls.map((c) => c[1])).toEqual(["install", "update", "install"]);
    });

    it("not root, or not Debian: says exactly what to install, installs nothing, fails", async () => {
      const user = fake(["flock", "setpriv", "ip", "sysctl", "kill"], { isRoot: false });
      const r = await ensurePackages("start", user.deps);
      expect(r).toEqual({ ok: false, message: expect.stringContaining("apt-get install -y --no-install-recommends conntrack iptables nftables") });
      expect(user.calls).toEqual([]);
      const other = fake(["flock", "setpriv"], { hasAptGet: false });
      const o = await ensurePackages("start", other.deps);
      expect(o.ok).toBe(false);
      expect(!o.ok && o.message).toMatch(/not a Debian system.*conntrack iproute2 iptables nftables procps/);
      expect(other.calls).toEqual([]);
    });

    it("the real check on this machine is quick and silent: every command is there", () => {
      const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "ensure-debian-packages.ts"), "test"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: "", stderr: "" });
    });
  });

  it("the death signal survives setpriv's uid drop: killing the parent with -9 kills the child", async () => {
    // A parent that starts `setpriv --reuid nobody ... --pdeathsig KILL -- sleep` and prints its pid.
    const argv = execArgv({ name: "sleeper", argv: ["sleep", "60"], user: { name: "nobody", group: "nogroup" } });
    const parent = spawn(
      process.execPath,
      ["-e", `const c = require("node:child_process").spawn(${JSON.stringify(argv[0])}, ${JSON.stringify(argv.slice(1))}, { stdio: "ignore" }); console.log(c.pid); setInterval(() => {}, 1000);`],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, [MARK]: `${RUN}-pdeath` } },
    );
    try {
      const pid = await until("the sleeper's pid", async () => {
        const line = await new Promise<string>((r) => parent.stdout!.once("data", (d: Buffer) => r(d.toString())));
        return Number(line.trim());
      });
      await until("sleep running as nobody", () => proc(pid)?.cmdline[0] === "sleep" && fs.statSync(`/proc/${pid}`).uid !== 0);
      process.kill(parent.pid!, "SIGKILL");
      await until("the sleeper killed by the kernel", () => !alive(pid), 5000);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});

// ---------------------------------------------------------------- the real thing

describe("npm start as a supervisor", () => {
  let lab: { name: string; lbNs: string };
  let port = 0;
  let dbFile = "";
  let env: Record<string, string>;
  let a: Started;
  let db: Database.Database;
  let agentSocket = "";
  const agents = (tag: string) => marked(tag).filter((p) => p.cmdline.includes("agent") && p.cmdline.some((x) => x.endsWith("natfarm.mjs")));
  const url = () => `https://127.0.0.1:${port}/`;

  const events = () => db.prepare("SELECT backend, \"from\", \"to\" FROM HealthEvent WHERE farm = 'checked' ORDER BY id").all() as { backend: string; from: string; to: string }[];
  const states = () => (db.prepare("SELECT b.state FROM Backend b JOIN Farm f ON f.id = b.farmId WHERE f.name = 'checked' ORDER BY b.position").all() as { state: string }[]).map((r) => r.state);

  /** Waits until `s` serves HTTP and runs exactly one checker; returns its web and checker pids. */
  async function ready(s: Started): Promise<{ web: number; checker: number }> {
    const ctx = () => `supervisor log:\n${s.log().slice(-4000)}`;
    const web = await until("the console answering", async () => (s.child.exitCode === null && (await httpOk(url())) ? listeners(port) : null), 90_000, ctx);
    const ck = await until("one checker", () => (checkers(s.tag).length === 1 ? checkers(s.tag)[0] : null), 30_000, ctx);
    expect(web).toHaveLength(1);
    return { web: web[0]!, checker: ck.pid };
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-supervisor-"));
    await ensureBuild((m) => console.log(`[supervisor] ${m}`));
    const info = await createTestLab({ backends: 2, ports: [80], prefix: "sup" });
    lab = { name: info.name, lbNs: info.lbNs };
    dbFile = path.join(dir, "console.db");
    const dbUrl = `file:${dbFile}`;
    migrateDatabase(dbUrl);
    const prisma = await openDatabase(dbUrl);
    try {
      const created = await createFarmService({ db: prisma, target: { kind: "netns", name: lab.lbNs } }).createFarm({
        name: "checked",
        vip: VIP,
        ports: "80",
        protocol: "tcp",
        mode: "dnat",
        // Two failures: one slow probe on a busy machine is not a change (it would be an extra event).
        healthcheck: { type: "tcp", interval: 2, timeout: 1, failures: 2, passes: 1 },
        backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80 })),
      });
      expect(created).toMatchObject({ ok: true });
    } finally {
      await disconnectPrisma(dbUrl);
    }
    await labEnsureVip({ name: lab.name, vip: VIP });
    db = new Database(dbFile, { readonly: true, fileMustExist: true });
    port = await freePort();
    agentSocket = path.join(dir, "run", "agent.sock");
    env = { PORT: String(port), NATFARM_DATABASE_URL: dbUrl, NATFARM_TARGET: "lab", NATFARM_LAB_NAME: lab.name, NATFARM_LAB_BACKENDS: "2", NATFARM_AGENT_SOCKET: agentSocket };
    a = startSupervisor("a", env);
  }, 600_000);

  afterAll(async () => {
    try {
      // Politely first (the supervisor ends its children), then by force whatever carries the marker.
      for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGTERM");
      await Promise.race([Promise.all(started.map((s) => s.exit)), sleep(15_000)]);
      killAllMarked();
      await until("every marked process gone", () => marked().length === 0, 10_000).catch(() => {});
    } finally {
      db?.close();
      // The database's and the lab's supervisor lock files are this run's alone (port numbers are reused: kept).
      if (lab && dbFile) for (const r of instanceResources({ databaseFile: fs.realpathSync(dir) + "/console.db", target: `netns:${lab.lbNs}`, port }).slice(0, 2)) fs.rmSync(r.file, { force: true });
      if (lab) await destroyTestLab(lab.name);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("starts the web server and the checker as its own children, in the lab's namespace, without its lock descriptors", async () => {
    const { web, checker } = await ready(a);
    expect(proc(web)!.ppid).toBe(a.pid);
    // No wrapper: `ip netns exec` and setpriv exec'd, the checker itself is the supervisor's child, in the namespace.
    expect(proc(checker)!.ppid).toBe(a.pid);
    expect(netnsInode(`/proc/${checker}/ns/net`)).toBe(netnsInode(`/run/netns/${lab.lbNs}`));
    expect(marked(a.tag).filter((p) => p.cmdline[0] === "ip" || p.cmdline[0] === "setpriv")).toEqual([]);
    // The supervisor holds its instance locks; the children inherit none of them.
    expect(fds(a.pid).filter((l) => /supervisor-(db|target|port)-.*\.lock$/.test(l))).toHaveLength(3);
    for (const pid of [web, checker]) expect(fds(pid).filter((l) => l.endsWith(".lock"))).toEqual([]);
    await until("both backends up", () => states().join() === "up,up");
  });

  it("runs the web server and the checker as the natfarm user; the agent is the only child with root, on a socket only root and natfarm's group may open", async () => {
    const { web, checker } = await ready(a);
    const agent = await until("the agent", () => (agents(a.tag).length === 1 ? agents(a.tag)[0] : null));
    const natfarmUid = Number(fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("natfarm:"))!.split(":")[2]);
    expect(natfarmUid).toBeGreaterThan(0);
    expect(uidOf(web)).toBe(natfarmUid);
    expect(uidOf(checker)).toBe(natfarmUid);
    expect(uidOf(agent.pid)).toBe(0);
    // Root: the supervisor itself (it runs no privileged program once it supervises) and the agent, nothing else
    // (but the supervisor's TypeScript loader's esbuild service, which compiles and runs nothing else).
    const rootProcs = marked(a.tag).filter((p) => uidOf(p.pid) === 0 && !(p.ppid === a.pid && /esbuild$/.test(p.cmdline[0] ?? "")));
    expect(rootProcs.map((p) => `${p.pid} ${p.cmdline.join(" ")}`).sort()).toEqual([proc(a.pid)!, agent].map((p) => `${p.pid} ${p.cmdline.join(" ")}`).sort());
    const st = fs.statSync(agentSocket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.uid).toBe(0);
    expect(st.gid).toBe(Number(fs.readFileSync("/etc/group", "utf8").split("\n").find((l) => l.startsWith("natfarm:"))!.split(":")[2]));
    expect(await agentCall(agentSocket, "ping", {})).toMatchObject({ targets: [`netns:${lab.lbNs}`], labs: [lab.name] });
  });

  it("the agent killed with -9: restarted, serving again, the console recovering by itself", async () => {
    await ready(a);
    const agent = await until("the agent", () => (agents(a.tag).length === 1 ? agents(a.tag)[0] : null));
    process.kill(agent.pid, "SIGKILL");
    const again = await until("a new agent serving", async () => {
      const now = agents(a.tag);
      return now.length === 1 && now[0]!.pid !== agent.pid && (await agentCall(agentSocket, "ping", {}, 2000).then(() => true, () => false)) ? now[0] : null;
    }, 60_000, () => a.log().slice(-3000));
    expect(proc(again.pid)!.ppid).toBe(a.pid);
    expect(a.log()).toMatch(/agent \(pid \d+\) was killed by SIGKILL/);
    // The live tables' data is read through the agent: with a viewer's session it answers again.
    const prisma = await openDatabase(`file:${dbFile}`);
    try {
      await createUser(prisma, "supviewer", "viewer", "supervisor-test-1");
      const session = await login(prisma, { name: "supviewer", password: "supervisor-test-1", address: "127.0.0.1" });
      if (!session.ok) throw new Error(session.message);
      const headers = { cookie: `${sessionCookieName(true)}=${session.token}` };
      await until("the live tables answering", async () => (await request(`https://127.0.0.1:${port}/api/tables`, { insecure: true, timeoutMs: 20_000, headers })).status === 200, 30_000);
    } finally {
      await disconnectPrisma(`file:${dbFile}`);
    }
  });

  it("(a) the web server killed with -9: a new one listens on the port again and answers", async () => {
    const { web } = await ready(a);
    process.kill(web, "SIGKILL");
    const again = await until("a new web server listening", async () => {
      const l = listeners(port);
      return l.length === 1 && l[0] !== web && (await httpOk(url())) ? l[0] : null;
    }, 60_000, () => a.log().slice(-3000));
    expect(proc(again)!.ppid).toBe(a.pid);
    expect(alive(web)).toBe(false);
    expect(a.log()).toMatch(/web \(pid \d+\) was killed by SIGKILL after [\d.]+ s/);
    expect(a.log()).toMatch(/web: restarting in 0\.5 s/);
  });

  it("(b) the checker killed with -9: exactly one checker chain again, no orphan, and one health event per change", async () => {
    const { checker } = await ready(a);
    process.kill(checker, "SIGKILL");
    const next = await until("a new checker", () => {
      const c = checkers(a.tag);
      return c.length === 1 && c[0]!.pid !== checker ? c[0] : null;
    }, 30_000, () => a.log().slice(-3000));
    expect(next.ppid).toBe(a.pid);
    // Not one process on the whole machine runs this file's checker besides it.
    expect(checkers().map((p) => p.pid)).toEqual([next.pid]);

    await labStopBackendServer({ name: lab.name, index: 1 });
    await until("backend 1 down", () => states()[1] === "down");
    await labStartBackendServer({ name: lab.name, index: 1 });
    await until("backend 1 up again", () => states()[1] === "up");
    // The checker records an event once the database has taken the change: the second may follow the state by a moment.
    await until("two health events", () => events().length >= 2).catch(() => {});
    await sleep(1000);
    // A second checker would have seen the same change and recorded it too.
    expect(events()).toEqual([
      { backend: "203.0.113.11:80", from: "up", to: "down" },
      { backend: "203.0.113.11:80", from: "down", to: "up" },
    ]);
    expect(checkers().map((p) => p.pid)).toEqual([next.pid]);
  });

  it("(b) the checker run on its own (npm run checker): killing either of its two processes leaves neither", async () => {
    const spare = path.join(dir, "spare.db");
    migrateDatabase(`file:${spare}`);
    const run = (tag: string) =>
      spawn(process.execPath, ["--import", "tsx", CHECKER], {
        cwd: ROOT,
        stdio: "ignore",
        env: { ...baseEnv(), NATFARM_TARGET: `netns:${lab.lbNs}`, NATFARM_DATABASE_URL: `file:${spare}`, [MARK]: `${RUN}-${tag}` } as NodeJS.ProcessEnv,
      });
    for (const victim of ["wrapper", "inner"] as const) {
      const tag = `solo-${victim}`;
      const wrapper = run(tag);
      const inner = await until("the inner checker", () => checkers(`${RUN}-${tag}`).find((p) => p.ppid === wrapper.pid));
      expect(netnsInode(`/proc/${inner.pid}/ns/net`)).toBe(netnsInode(`/run/netns/${lab.lbNs}`));
      process.kill(victim === "wrapper" ? wrapper.pid! : inner.pid, "SIGKILL");
      await until(`no process of the standalone checker left after killing the ${victim}`, () => marked(`${RUN}-${tag}`).length === 0, 10_000);
    }
  });

  it("(d) a second npm start while one runs: refused with the holder's pid, and nothing started or touched", async () => {
    const before = await ready(a);
    await until("both backends up", () => states().join() === "up,up");
    // (-shm changes with every read: the running checker reads each second.)
    const dbFiles = () => [dbFile, `${dbFile}-wal`].map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0));
    const dbBefore = dbFiles();
    // This run's namespaces only: other test files (or another developer's run) may make and delete theirs meanwhile.
    const ours = () =>
      spawnSync("ip", ["netns", "list"], { encoding: "utf8" })
        .stdout.split("\n")
        .map((l) => l.split(" ")[0]!)
        .filter((n) => n.startsWith(RUN) || n.startsWith(lab.name))
        .sort();
    const labBefore = ours();
    expect(labBefore.length).toBeGreaterThan(0);

    const second = startSupervisor("b", env);
    const exit = await second.exit;
    expect(exit.code).toBe(1);
    expect(second.log()).toContain(`natfarm: already running for this installation: pid ${a.pid}`);
    expect(second.log()).toContain(`database ${dbFile}`);
    expect(second.log()).not.toMatch(/database .*: (up to date|applied)|started \(pid|lab .* up/);
    expect(marked(second.tag)).toEqual([]);
    expect(dbFiles()).toEqual(dbBefore);
    expect(await ready(a)).toEqual(before);
    expect(ours()).toEqual(labBefore);

    // Another database but the same lab: the kernel's rules would be fought over, also refused.
    const other = startSupervisor("b2", { ...env, NATFARM_DATABASE_URL: `file:${path.join(dir, "other.db")}`, PORT: String(await freePort()) });
    expect((await other.exit).code).toBe(1);
    expect(other.log()).toMatch(new RegExp(`pid ${a.pid} .* holds the lock on its target netns:${lab.lbNs}`));
    expect(fs.existsSync(path.join(dir, "other.db"))).toBe(false);
    expect(marked(other.tag)).toEqual([]);
  });

  it("(c) the supervisor killed with -9: its children end with it, the port is free, and a new npm start works", async () => {
    const { web, checker } = await ready(a);
    const children = descendants(a.pid).map((p) => p.pid);
    expect(children).toEqual(expect.arrayContaining([web, checker]));
    process.kill(a.pid, "SIGKILL");
    await a.exit;
    await until("no child of the killed supervisor left", () => children.every((pid) => !alive(pid)) && marked(a.tag).length === 0, 5000, () =>
      JSON.stringify(marked(a.tag)),
    );
    const holders = () => JSON.stringify(listeners(port).map((pid) => ({ ...proc(pid), env: environ(pid)[MARK] })));
    await until("the port free again", async () => listeners(port).length === 0 && (await portFree(port)), 5000, holders);

    const c = startSupervisor("c", env);
    const now = await ready(c);
    expect(proc(now.web)!.ppid).toBe(c.pid);
    for (const r of instanceResources({ databaseFile: dbFile, target: `netns:${lab.lbNs}`, port })) expect(readLockHolder(r.file)?.pid).toBe(c.pid);

    // And SIGTERM: the supervisor ends its children, then itself.
    const kids = descendants(c.pid).map((p) => p.pid);
    c.child.kill("SIGTERM");
    expect(await c.exit).toEqual({ code: 0, signal: null });
    await until("the stopped supervisor's children gone", () => kids.every((pid) => !alive(pid)) && marked(c.tag).length === 0, 5000);
    expect(c.log()).toMatch(/SIGTERM: stopping[\s\S]*stopping checker[\s\S]*stopping web[\s\S]*stopped/);
    await until("the port free again", async () => listeners(port).length === 0 && (await portFree(port)), 5000, holders);
  });
});
