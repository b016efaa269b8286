import { formatMark, MARK_MIN } from "../farms/marks.ts";
import { runPrivileged } from "../privileged/run.ts";
import type { Target } from "../privileged/target.ts";

/**
 * Connections as conntrack sees them, counted per netfilter mark (that is,
 * per backend), and the "cut" that ends a backend's connections.
 */
export interface MarkStats {
  /** TCP ESTABLISHED, or UDP/SCTP flows that have seen a reply. */
  established: number;
  /** TCP SYN_SENT / SYN_RECV, or flows not yet answered. */
  pending: number;
  /** Closing states (TIME_WAIT, FIN_WAIT, CLOSE, ...). */
  closing: number;
  total: number;
}

export interface ConnectionStats {
  at: string;
  byMark: Map<number, MarkStats>;
}

const PENDING_TCP = new Set(["SYN_SENT", "SYN_RECV", "SYN_SENT2"]);

/** Parses `conntrack -L` lines: `tcp 6 431999 ESTABLISHED src=... [ASSURED] mark=524 use=1`. */
export function parseConntrack(text: string): Map<number, MarkStats> {
  const byMark = new Map<number, MarkStats>();
  for (const line of text.split("\n")) {
    const mark = /(?:^| )mark=(\d+)/.exec(line);
    if (!mark) continue;
    const value = Number(mark[1]);
    if (value < MARK_MIN) continue;
    const fields = line.trim().split(/\s+/);
    const proto = fields[0];
    let kind: keyof Omit<MarkStats, "total">;
    if (proto === "tcp" || proto === "sctp") {
      const state = fields[3] ?? "";
      kind = state === "ESTABLISHED" ? "established" : PENDING_TCP.has(state) || state === "COOKIE_WAIT" || state === "COOKIE_ECHOED" ? "pending" : "closing";
    } else {
      kind = line.includes("[UNREPLIED]") ? "pending" : "established";
    }
    let s = byMark.get(value);
    if (!s) byMark.set(value, (s = { established: 0, pending: 0, closing: 0, total: 0 }));
    s[kind]++;
    s.total++;
  }
  return byMark;
}

export async function connectionStats(target: Target, timeoutMs = 10_000): Promise<ConnectionStats> {
  const { stdout } = await runPrivileged("conntrack", ["-L"], { target, timeoutMs });
  return { at: new Date().toISOString(), byMark: parseConntrack(stdout) };
}

const DELETED = /(\d+) flow entries have been deleted/;

/**
 * Ends every connection of one backend: its conntrack entries go, so its next
 * packets are no longer translated and the connection breaks. Returns how many
 * entries were deleted.
 */
export async function cutConnections(target: Target, mark: number, timeoutMs = 10_000): Promise<number> {
  const r = await runPrivileged("conntrack", ["-D", "--mark", String(mark)], { target, timeoutMs, allowFailure: true });
  const n = DELETED.exec(r.stderr);
  // conntrack exits 1 when nothing matched; anything else without the count is a real failure.
  if (!n) throw new Error(`conntrack -D --mark ${formatMark(mark)} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
  return Number(n[1]);
}
