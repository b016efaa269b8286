import fs from "node:fs";
import net from "node:net";

/**
 * Is the console's port free? Checked once before start-up, so that a port
 * taken by something else is a clear refusal instead of a web server that
 * fails with EADDRINUSE and is restarted forever.
 */
export async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" ? resolve(false) : reject(e)));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Socket inodes listening on TCP `port` (any address, IPv4 and IPv6) in this network namespace. */
export function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9)
      if (f.length < 10 || f[3] !== "0A") continue;
      const localPort = parseInt(f[1]!.split(":")[1] ?? "", 16);
      if (localPort === port) inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** Processes holding one of the sockets listening on `port`, with their command line. */
export function portHolders(port: number): { pid: number; command: string }[] {
  const inodes = listeningInodes(port);
  if (!inodes.size) return [];
  const found: { pid: number; command: string }[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${entry}/fd/${fd}`));
        return m !== null && inodes.has(m[1]!);
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = "?";
    try {
      command = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    } catch {
      /* ended meanwhile */
    }
    found.push({ pid: Number(entry), command });
  }
  return found;
}
