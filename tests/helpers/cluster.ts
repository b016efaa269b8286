import { clusterLabConntrackdDump } from "../../lib/lab/cluster.ts";
import { labHoldConnections, type HoldHandle, type HoldReport } from "../../lib/lab/cluster-client.ts";
import { until } from "./until.ts";

/**
 * The cluster tests' held connections: a client holding established TCP
 * connections to a VIP (pinging each), and the waits around a failover —
 * until the backups' conntrackd caches hold every one of them, and until
 * every one answered again afterwards.
 */

/** Established connections to `port` in a node's conntrackd cache: source port -> mark. */
export async function cachedConnections(name: string, node: number, cache: "internal" | "external", port: number): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const l of await clusterLabConntrackdDump({ name, node, cache })) {
    if (!l.includes("ESTABLISHED") || !l.includes(`dport=${port} `)) continue;
    out.set(Number(/sport=(\d+)/.exec(l)![1]), Number(/mark=(\d+)/.exec(l)?.[1] ?? 0));
  }
  return out;
}

/**
 * Holds `connections` connections to vip:port and waits until the
 * conntrackd of every node in `backups` has all of them in its external
 * cache (a takeover by any of them then keeps them). The handle goes into
 * `held`, for the caller's teardown.
 */
export async function holdSynced(o: { name: string; vip: string; port: number; backups: number[]; connections: number; held: HoldHandle[]; timeoutMs?: number }): Promise<{ h: HoldHandle; ready: HoldReport }> {
  const h = labHoldConnections({ name: o.name, vip: o.vip, port: o.port, connections: o.connections, intervalMs: 200, timeoutMs: o.timeoutMs ?? 20_000 });
  o.held.push(h);
  const ready = await h.ready;
  const open = ready.conns.filter((c) => c.closed === null).length;
  if (open !== o.connections) throw new Error(`${open} of ${o.connections} connections to ${o.vip}:${o.port} opened`);
  const ports = ready.conns.map((c) => c.localPort!);
  for (const node of o.backups) {
    await until(`node ${node}'s conntrackd holding the ${o.connections} connections`, 20_000, async () => {
      const ext = await cachedConnections(o.name, node, "external", o.port);
      return ports.every((p) => ext.has(p));
    });
  }
  return { h, ready };
}

/** Every held connection answered at least `more` further pings after `before`, or one of them ended. */
export async function keptAnswering(h: HoldHandle, before: HoldReport, more = 3, timeoutMs = 45_000): Promise<HoldReport> {
  const at = new Map(before.conns.map((c) => [c.id, c.received]));
  return until("every connection answering again", timeoutMs, async () => {
    const r = await h.report();
    const ended = r.conns.some((c) => c.closed !== null);
    return ended || r.conns.every((c) => c.received >= at.get(c.id)! + more) ? r : null;
  });
}
