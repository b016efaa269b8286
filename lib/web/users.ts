import fs from "node:fs";
import type { Owner } from "./tls.ts";

/**
 * uid and gid of a user and group by name (Node has no getpwnam): read from
 * /etc/passwd and /etc/group, the files `useradd --system` writes. The
 * supervisor uses it to hand the TLS files to the user the web server runs
 * as. A number is taken as it is.
 */
export function parseIdFile(text: string, name: string): number | null {
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  return null;
}

export function lookupOwner(user: { name: string; group: string }, files = { passwd: "/etc/passwd", group: "/etc/group" }): Owner {
  const id = (value: string, file: string, what: string) => {
    if (/^\d+$/.test(value)) return Number(value);
    const n = parseIdFile(fs.readFileSync(file, "utf8"), value);
    if (n === null) throw new Error(`no ${what} ${JSON.stringify(value)} in ${file}`);
    return n;
  };
  return { uid: id(user.name, files.passwd, "user"), gid: id(user.group, files.group, "group") };
}
