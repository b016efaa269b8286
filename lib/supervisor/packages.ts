import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/**
 * The Debian packages `npm start` and `npm test` need, installed when
 * missing: on a fresh Debian `npm start` used to stop at 'exec of
 * "iptables-save" failed'. Each purpose lists the commands it runs; a missing
 * command names its package. Everything present: no apt call at all (a few
 * stat calls). As root on Debian: ONE logged `apt-get install` line (with
 * `apt-get update` first when the package lists are missing or too old to
 * know a package). Otherwise: the exact packages to install, and a failure.
 */
export const PACKAGE_OF: Readonly<Record<string, string>> = {
  iptables: "iptables",
  "iptables-save": "iptables",
  "iptables-restore": "iptables",
  // The nftables engine (NATFARM_ENGINE=nftables) and the switch between engines.
  nft: "nftables",
  conntrack: "conntrack",
  ip: "iproute2",
  // The lab sets sysctls in its namespaces and ends its servers with kill(1).
  sysctl: "procps",
  kill: "procps",
  ps: "procps",
  // The supervisor's lock and its children's parent-death signal (util-linux is Essential: always there).
  flock: "util-linux",
  setpriv: "util-linux",
  chromium: "chromium",
  // The cluster lab's tests: VRRP failover and connection sync inside its node namespaces.
  keepalived: "keepalived",
  conntrackd: "conntrackd",
};

export type Purpose = "start" | "start-no-target" | "test";

/** Commands each purpose runs. `start-no-target`: the console with NATFARM_TARGET=none (it never touches the kernel). */
export const COMMANDS: Readonly<Record<Purpose, readonly string[]>> = {
  "start-no-target": ["flock", "setpriv"],
  start: ["iptables", "iptables-save", "iptables-restore", "nft", "conntrack", "ip", "sysctl", "kill", "flock", "setpriv"],
  test: ["iptables", "iptables-save", "iptables-restore", "nft", "conntrack", "ip", "sysctl", "kill", "ps", "flock", "setpriv", "chromium", "keepalived", "conntrackd"],
};

/** Where Debian puts administrator commands: searched even when PATH lacks them (a non-login root shell). */
export const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The directory holding `command`: PATH first, then the system directories. */
export function findCommand(command: string, pathEnv = process.env.PATH ?? ""): string | null {
  const dirs = [...pathEnv.split(":").filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) if (executable(path.join(dir, command))) return dir;
  return null;
}

export interface Missing {
  command: string;
  pkg: string;
}

export function missingCommands(commands: readonly string[], find: (c: string) => string | null = (c) => findCommand(c)): Missing[] {
  return commands.filter((c) => find(c) === null).map((command) => ({ command, pkg: PACKAGE_OF[command] ?? command }));
}

/** Package names, once each, in a stable order. */
export function packagesOf(missing: Missing[]): string[] {
  return [...new Set(missing.map((m) => m.pkg))].sort();
}

export interface EnsureDeps {
  isRoot: boolean;
  hasAptGet: boolean;
  find: (command: string) => string | null;
  /** Runs argv (no shell) with output shown; resolves with the exit code and the captured stderr. */
  run: (argv: string[]) => Promise<{ code: number; stderr: string }>;
  /** Whether apt has package lists at all (a fresh image has none until `apt-get update`). */
  aptListsPresent: () => boolean;
  log: (message: string) => void;
}

export type EnsureResult = { ok: true; installed: string[] } | { ok: false; message: string };

const installArgv = (pkgs: string[]) => ["apt-get", "install", "-y", "--no-install-recommends", ...pkgs];

/** apt's words for "these lists do not know that package (yet)". */
const LISTS_TOO_OLD = /Unable to locate package|has no installation candidate|Failed to fetch|404\s+Not Found|no longer available/i;

export async function ensurePackages(purpose: Purpose, deps: EnsureDeps): Promise<EnsureResult> {
  const missing = missingCommands(COMMANDS[purpose], deps.find);
  if (!missing.length) return { ok: true, installed: [] };
  const pkgs = packagesOf(missing);
  const what = missing.map((m) => `${m.command} (${m.pkg})`).join(", ");
  const line = installArgv(pkgs).join(" ");
  if (!deps.hasAptGet) {
    return { ok: false, message: `missing commands: ${what}. This is not a Debian system (no apt-get): install the packages that provide them (Debian names: ${pkgs.join(" ")}).` };
  }
  if (!deps.isRoot) {
    return { ok: false, message: `missing commands: ${what}. Install them as root:\n  ${line}` };
  }
  deps.log(`missing commands: ${what}`);
  let updated = false;
  const update = async () => {
    updated = true;
    deps.log("apt-get update");
    return deps.run(["apt-get", "update"]);
  };
  if (!deps.aptListsPresent()) await update();
  deps.log(line);
  let r = await deps.run(installArgv(pkgs));
  if (r.code !== 0 && !updated && LISTS_TOO_OLD.test(r.stderr)) {
    await update();
    deps.log(line);
    r = await deps.run(installArgv(pkgs));
  }
  if (r.code !== 0) return { ok: false, message: `${line} failed (exit code ${r.code})${r.stderr.trim() ? `:\n${r.stderr.trim().split("\n").slice(-5).join("\n")}` : ""}` };
  const still = missingCommands(COMMANDS[purpose], deps.find);
  if (still.length) return { ok: false, message: `after ${line}, still missing: ${still.map((m) => `${m.command} (${m.pkg})`).join(", ")}` };
  return { ok: true, installed: pkgs };
}

/** Output shown as it comes, stderr also kept (to tell "lists too old" from other failures). */
function runShown(argv: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "inherit", "pipe"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" },
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    child.once("error", (e) => resolve({ code: 127, stderr: e.message }));
    child.once("close", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

function aptListsPresent(): boolean {
  try {
    return fs.readdirSync("/var/lib/apt/lists").some((f) => f.endsWith("_Packages") || f.includes("_Packages."));
  } catch {
    return false;
  }
}

const POLICY_RC_D = "/usr/sbin/policy-rc.d";

/**
 * apt-get install with service starts refused (policy-rc.d exit 101, as
 * Debian's container images do): installing conntrackd or keepalived for
 * the cluster lab must not start them in this machine's own namespace with
 * the package's example configuration. An administrator's own policy-rc.d
 * is left as it is.
 */
async function installWithoutServiceStarts(argv: string[]): Promise<{ code: number; stderr: string }> {
  if (argv[1] !== "install" || fs.existsSync(POLICY_RC_D)) return runShown(argv);
  fs.writeFileSync(POLICY_RC_D, "#!/bin/sh\n# written by natfarm for one apt-get install: no service starts\nexit 101\n", { mode: 0o755 });
  try {
    return await runShown(argv);
  } finally {
    fs.rmSync(POLICY_RC_D, { force: true });
  }
}

export function realDeps(log: (m: string) => void): EnsureDeps {
  return {
    isRoot: typeof process.getuid === "function" && process.getuid() === 0,
    hasAptGet: findCommand("apt-get") !== null,
    find: (c) => findCommand(c),
    run: installWithoutServiceStarts,
    aptListsPresent,
    log,
  };
}

/**
 * Commands found only outside PATH (in /usr/sbin for a shell whose PATH lacks
 * it) would still fail when natfarm runs them by name: their directories are
 * added to this process's PATH, which the children inherit.
 */
export function addSystemDirsToPath(commands: readonly string[]): void {
  const parts = (process.env.PATH ?? "").split(":").filter(Boolean);
  for (const c of commands) {
    const dir = findCommand(c, process.env.PATH);
    if (dir && !parts.includes(dir)) parts.push(dir);
  }
  process.env.PATH = parts.join(":");
}
