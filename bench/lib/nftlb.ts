import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";

/**
 * nftlb (SKUDONET's nftables load balancer, Debian's 1.0.7) as the peer the
 * side-by-side bench measures. The daemon only ever runs inside a namespace
 * the bench created (`ip netns exec NS nftlb -H 127.0.0.1`), so its REST port
 * and its `table ip nftlb` exist there alone; its requests are made from
 * inside that namespace too, by curl, whose own `time_total` is the figure
 * (the `ip netns exec` and process start around it are not nftlb's cost).
 */

export const NFTLB_PORT = 5555;

export function nftlbVersion(): string {
  const r = spawnSync("nftlb", ["-h"], { encoding: "utf8" });
  if (r.error) return "nftlb not installed";
  return /Version\s+(\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? "nftlb (version unknown)";
}

/**
 * natfarm's farms as nftlb farms with the same behaviour: natfarm's `nat`
 * (SNAT to the VIP) is nftlb's snat with the VIP as source address (not
 * masquerade, which would take the outgoing interface's address), `dnat` is
 * dnat; weights and backend ports as they are.
 */
export function nftlbFarm(f: FarmInput): object {
  return {
    name: f.name,
    family: "ipv4",
    "virtual-addr": f.vip,
    "virtual-ports": String(f.ports).replace(":", "-"),
    mode: f.mode === "nat" ? "snat" : "dnat",
    ...(f.mode === "nat" ? { "source-addr": f.vip } : {}),
    protocol: f.protocol ?? "tcp",
    scheduler: "weight",
    state: "up",
    backends: (f.backends ?? []).map((b, k) => ({ name: `b${k}`, "ip-addr": b.ip, port: String(b.port), weight: String(b.weight ?? 1), state: "up" })),
  };
}

export const nftlbDocument = (farms: readonly FarmInput[]) => JSON.stringify({ farms: farms.map(nftlbFarm) });

/** The same one-farm change the natfarm side makes: backend 0's weight. */
export const nftlbWeightChange = (farm: string, weight: number) => JSON.stringify({ farms: [{ name: farm, backends: [{ name: "b0", weight: String(weight) }] }] });

export interface NftlbDaemon {
  child: ChildProcess;
  key: string;
  ns: string;
  stop(): Promise<void>;
}

/**
 * Starts the daemon in `ns`, optionally with a configuration file it loads
 * before it opens its port (`-c`). Log level 4 (warnings) to a file: at the
 * default level it logs every nft command it runs, which is not its work.
 */
export function startNftlb(o: { ns: string; key: string; logFile: string; config?: string }): NftlbDaemon {
  const out = fs.openSync(o.logFile, "a");
  const args = ["netns", "exec", o.ns, "nftlb", "-k", o.key, "-H", "127.0.0.1", "-P", String(NFTLB_PORT), "-L", "2", "-l", "4", ...(o.config ? ["-c", o.config] : [])];
  const child = spawn("ip", args, { stdio: ["ignore", out, out] });
  fs.closeSync(out);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const ended = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  return { child, key: o.key, ns: o.ns, stop };
}

export interface NftlbAnswer {
  /** 0: no answer within maxSeconds. */
  status: number;
  body: string;
  /** curl's time_total: from connecting to the last byte of the answer. */
  ms: number;
}

/** One REST call from inside the namespace; a body is handed over as a file (`--data-binary @file`). */
export async function nftlbCall(d: Pick<NftlbDaemon, "ns" | "key">, method: "GET" | "POST" | "PUT", path: string, o: { bodyFile?: string; maxSeconds?: number } = {}): Promise<NftlbAnswer> {
  const args = [
    "netns", "exec", d.ns, "curl", "-sS", "-X", method,
    // nftlb reads "Key: " and "Content-Length: " with exactly that case; no 100-continue round trip.
    "-H", `Key: ${d.key}`, "-H", "Expect:",
    ...(o.bodyFile ? ["-H", "Content-Type: application/json", "--data-binary", `@${o.bodyFile}`] : []),
    "--max-time", String(o.maxSeconds ?? 60),
    "-w", "\n%{http_code} %{time_total}",
    `http://127.0.0.1:${NFTLB_PORT}${path}`,
  ];
  const r = await runPrivileged("ip", args, { allowFailure: true, timeoutMs: ((o.maxSeconds ?? 60) + 15) * 1000 });
  const nl = r.stdout.lastIndexOf("\n");
  const [code, total] = r.stdout.slice(nl + 1).trim().split(" ");
  const status = Number(code) || 0;
  // 28: curl gave up at --max-time (status 0 says so to the caller); anything else without an answer is a failure.
  if (r.exitCode !== 0 && !status && r.exitCode !== 28) throw new Error(`curl to nftlb failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return { status, body: r.stdout.slice(0, Math.max(nl, 0)), ms: Number(total) * 1000 };
}

/** Waits until the daemon answers on its port (after a `-c` load it opens the port only when the load is done). */
export async function waitForNftlb(d: NftlbDaemon, deadlineMs: number, everyMs = 50): Promise<boolean> {
  while (Date.now() < deadlineMs) {
    if (d.child.exitCode !== null) throw new Error(`nftlb exited with code ${d.child.exitCode} before it answered`);
    // Any HTTP answer will do (a small one: not the whole farm list).
    const r = await nftlbCall(d, "GET", "/farms/f0", { maxSeconds: 5 }).catch(() => null);
    if (r && r.status > 0) return true;
    await new Promise((res) => setTimeout(res, everyMs));
  }
  return false;
}
