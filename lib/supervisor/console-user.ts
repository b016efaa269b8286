import fs from "node:fs";
import path from "node:path";
import { execa } from "execa";

/**
 * The unprivileged system user the web server and the health checker run as
 * (Cockpit's cockpit-ws, Proxmox's www-data): created when missing, and given
 * what it must write — the database's directory (SQLite also writes its -wal
 * and -shm files there) and the build's cache. Everything else stays root's;
 * the project itself only needs to be readable.
 */
export interface ConsoleUser {
  name: string;
  uid: number;
  gid: number;
}

function lookup(file: string, name: string): string[] | null {
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return f;
  }
  return null;
}

export async function ensureConsoleUser(name: string, log: (s: string) => void): Promise<ConsoleUser> {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) throw new Error(`NATFARM_USER must be a system user name ([a-z_][a-z0-9_-]*), got ${JSON.stringify(name)}`);
  let entry = lookup("/etc/passwd", name);
  if (!entry) {
    const args = ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group", name];
    log(`creating system user ${name}: useradd ${args.join(" ")}`);
    const r = await execa("useradd", args, { reject: false });
    if (r.exitCode !== 0) throw new Error(`useradd ${name} failed: ${String(r.stderr).trim() || `exit code ${r.exitCode}`}`);
    entry = lookup("/etc/passwd", name);
    if (!entry) throw new Error(`useradd ${name} succeeded but ${name} is not in /etc/passwd`);
  }
  return { name, uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** Hands `dir` (and what is in it, one level down: the database and its side files, the TLS files) to the user. */
export function handOver(dir: string, user: ConsoleUser): void {
  fs.mkdirSync(dir, { recursive: true });
  const chown = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.uid !== user.uid || st.gid !== user.gid) fs.chownSync(p, user.uid, user.gid);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) chown(path.join(p, e));
  };
  chown(dir);
}

/** Whether `user` can read the project (it runs from it): a checkout under /root, say, cannot be served. */
export async function checkReadable(root: string, user: ConsoleUser): Promise<string | null> {
  const r = await execa("setpriv", ["--reuid", String(user.uid), "--regid", String(user.gid), "--clear-groups", "--", "test", "-r", path.join(root, "package.json")], { reject: false });
  return r.exitCode === 0 ? null : `the console's user ${user.name} cannot read ${root} (a parent directory is not world-readable): move the project, or make its directories readable (chmod o+rx)`;
}
