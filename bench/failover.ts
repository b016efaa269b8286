/**
 * Failover time of the cluster lab (issue 12, "Speed"): a client sends a new
 * UDP flow to a VIP every 10 ms; the master's links are pulled; the failover
 * time is the silence between the last answer (through the old master) and
 * the first answer through the new one. Meanwhile 20 established TCP
 * connections are held and pinged: the share that survives, and the longest
 * one of them waited for an answer (TCP retransmitting into the new master).
 * The roles alternate: each run fails the current master, then heals it and
 * waits until it is a synced backup again.
 *
 * With `--nodes 3` (or 4) the cluster has more nodes (conntrackd over the
 * sync link's multicast group): every backup must hold the connections
 * before a run, and the new master is whichever VRRP elects (the highest
 * priority left).
 *
 *   npx tsx bench/failover.ts [--runs 10] [--nodes 2]
 */
import { labHoldConnections, labProbe, longestGap } from "../lib/lab/cluster-client.ts";
import { clusterLabApply, clusterLabConntrackdDump, clusterLabFail, clusterLabHeal, clusterLabStatus, clusterLabUp } from "../lib/lab/cluster.ts";
import { labDown, uniqueLabName } from "../lib/lab/index.ts";
import { machine, median } from "./common.ts";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 100) throw new Error("--runs must be 1..100");
const nodesArg = process.argv.indexOf("--nodes");
const NODES = nodesArg > 0 ? Number(process.argv[nodesArg + 1]) : 2;
if (!Number.isInteger(NODES) || NODES < 2 || NODES > 4) throw new Error("--nodes must be 2..4");
const CONNECTIONS = 20;
const name = uniqueLabName("bf");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

const farm = (n: string, vip: string, port: number, protocol: "tcp" | "udp") => ({
  name: n,
  vip,
  ports: String(port),
  protocol,
  mode: "nat" as const,
  backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port, weight: 1 })),
});

console.log(`machine: ${machine()}`);
const results: { run: number; from: string; to: string; gapMs: number; kept: number; maxWaitMs: number }[] = [];
try {
  await clusterLabUp({ name, nodes: NODES, backends: 2, ownerPid: process.pid });
  console.log(`cluster: ${NODES} nodes, conntrackd ${NODES > 2 ? "over a multicast group" : "unicast UDP"} on the sync link, VRRPv3 advert_int 0.1`);
  await clusterLabApply({ name, farms: [farm("web", "198.51.100.250", 80, "tcp"), farm("probe", "198.51.100.252", 443, "udp")] });
  for (let run = 1; run <= RUNS; run++) {
    const s0 = await until("one master", 30_000, async () => {
      const s = await clusterLabStatus({ name });
      return s.severity === "ok" ? s : null;
    });
    const from = Number(s0.master!.slice(1));
    const backups = s0.nodes.filter((n) => n.name !== s0.master).map((n) => Number(n.name.slice(1)));
    const hold = labHoldConnections({ name, vip: "198.51.100.250", port: 80, connections: CONNECTIONS, intervalMs: 200, timeoutMs: 20_000 });
    const ready = await hold.ready;
    const ports = ready.conns.map((c) => c.localPort!);
    for (const b of backups) {
      await until(`n${b} holding every connection`, 20_000, async () => {
        const ext = await clusterLabConntrackdDump({ name, node: b, cache: "external" });
        return ports.every((p) => ext.some((l) => l.includes(`sport=${p} `) && l.includes("ESTABLISHED")));
      });
    }
    const probe = labProbe({ name, vip: "198.51.100.252", port: 443, everyMs: 10 });
    await probe.ready;
    await sleep(500);
    const failedAt = Date.now();
    await clusterLabFail({ name, node: from });
    const to = await until("a new master", 30_000, async () => {
      const m = (await clusterLabStatus({ name })).master;
      return m && m !== `n${from}` ? Number(m.slice(1)) : null;
    });
    const before = await hold.report();
    await until("the held connections answering (or lost)", 45_000, async () => {
      const r = await hold.report();
      return r.conns.every((c) => c.closed !== null || c.received >= before.conns[c.id]!.received + 3);
    });
    await sleep(500);
    const probes = await probe.stop();
    const final = await hold.stop();
    const gap = longestGap(probes.probes, failedAt - 200);
    results.push({
      run,
      from: `n${from}`,
      to: `n${to}`,
      gapMs: gap?.gapMs ?? NaN,
      kept: final.conns.filter((c) => c.closed === "client" && c.error === null).length,
      maxWaitMs: Math.max(...final.conns.map((c) => c.maxWaitMs)),
    });
    const r = results.at(-1)!;
    console.log(`run ${String(run).padStart(2)}: n${from} -> n${to}: failover ${r.gapMs} ms, established kept ${r.kept}/${CONNECTIONS} (longest wait for an answer ${r.maxWaitMs} ms)`);
    await clusterLabHeal({ name, node: from });
    await until(`n${from} a synced backup again`, 60_000, async () => {
      const s = await clusterLabStatus({ name });
      const n = s.nodes[from - 1]!;
      return s.severity === "ok" && n.role === "backup" && n.transitionDone;
    });
  }
} finally {
  await labDown({ name });
}
const gaps = results.map((r) => r.gapMs);
const kept = results.reduce((n, r) => n + r.kept, 0);
console.log(
  `failover (last answer via the old master -> first via the new, a new UDP flow every 10 ms), ${results.length} runs: median ${median(gaps)} ms, worst ${Math.max(...gaps)} ms (goal: median <= 500, worst <= 1000)`,
);
console.log(`established TCP connections kept: ${kept}/${results.length * CONNECTIONS} (${((100 * kept) / (results.length * CONNECTIONS)).toFixed(0)} %); longest wait for an answer across the failover: median ${median(results.map((r) => r.maxWaitMs))} ms, worst ${Math.max(...results.map((r) => r.maxWaitMs))} ms`);
