import path from "node:path";
import readline from "node:readline";
import { execa } from "execa";
import { z } from "zod";
import { privilegedArgv } from "../privileged/run.ts";
import { LabNameSchema, parseLabInput, PortSchema, VipSchema } from "./names.ts";
import { labScriptPath } from "./servers.ts";

/**
 * Long-running clients in a lab's client namespace (scripts/lab-cluster-client.mjs),
 * driven while the caller fails and heals nodes: established connections
 * held and pinged (do they survive a failover?) and a stream of new UDP
 * flows every 10 ms (how long is the gap?).
 */

export const HeldConnectionSchema = z.object({
  id: z.number(),
  localPort: z.number().nullable(),
  sent: z.number(),
  received: z.number(),
  lastReplyAt: z.number().nullable(),
  /** Longest wait for one answer (a failover shows here: TCP retransmitting into the new master). */
  maxWaitMs: z.number(),
  backend: z.string().nullable(),
  peer: z.string().nullable(),
  /** null while open; "client" when we closed it; "server", "timeout" or "error" when it was lost. */
  closed: z.enum(["client", "server", "timeout", "error"]).nullable(),
  error: z.string().nullable(),
});
export type HeldConnection = z.infer<typeof HeldConnectionSchema>;

const HoldReport = z.object({ type: z.enum(["ready", "report", "final"]), at: z.number(), conns: z.array(HeldConnectionSchema) });
export type HoldReport = z.infer<typeof HoldReport>;
const ProbeFinal = z.object({ type: z.literal("final"), at: z.number(), probes: z.array(z.tuple([z.number(), z.number().nullable(), z.string().nullable()])) });
export type ProbeFinal = z.infer<typeof ProbeFinal>;

const HoldInput = z.object({
  name: LabNameSchema,
  vip: VipSchema,
  port: PortSchema,
  connections: z.number().int().min(1).max(1000),
  intervalMs: z.number().int().min(10).max(60_000).optional(),
  timeoutMs: z.number().int().min(100).max(120_000).optional(),
});
const ProbeInput = z.object({
  name: LabNameSchema,
  vip: VipSchema,
  port: PortSchema,
  everyMs: z.number().int().min(1).max(10_000).optional(),
  timeoutMs: z.number().int().min(100).max(60_000).optional(),
});

interface Driven {
  request(command: "report" | "stop"): Promise<unknown>;
  ready: Promise<unknown>;
  kill(): void;
}

function drive(name: string, args: string[], readyTimeoutMs: number): Driven {
  const argv = privilegedArgv("ip", ["netns", "exec", `${name}-client`, process.execPath, clientScript(), ...args]);
  const child = execa(argv[0]!, argv.slice(1), { stdin: "pipe", stdout: "pipe", stderr: "pipe", reject: false, env: { LC_ALL: "C" } });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const waiting: ((line: unknown) => void)[] = [];
  let readyResolve!: (v: unknown) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
  const readyTimer = setTimeout(() => readyReject(new Error(`lab client not ready after ${readyTimeoutMs} ms: ${stderr}`)), readyTimeoutMs);
  let isReady = false;
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    const msg = JSON.parse(line) as { type: string };
    if (msg.type === "ready" && !isReady) {
      isReady = true;
      clearTimeout(readyTimer);
      readyResolve(msg);
      return;
    }
    waiting.shift()?.(msg);
  });
  void child.then((r) => {
    clearTimeout(readyTimer);
    if (!isReady) readyReject(new Error(`lab client exited (${r.exitCode}) before it was ready: ${stderr}`));
    for (const w of waiting.splice(0)) w(new Error(`lab client exited (${r.exitCode}): ${stderr}`));
  });
  return {
    ready,
    request: (command) =>
      new Promise((resolve, reject) => {
        waiting.push((msg) => (msg instanceof Error ? reject(msg) : resolve(msg)));
        child.stdin!.write(`${command}\n`);
      }),
    kill: () => child.kill("SIGKILL"),
  };
}

const clientScript = () => path.join(path.dirname(labScriptPath("lab-client.mjs")), "lab-cluster-client.mjs");

export interface HoldHandle {
  /** Resolves once every connection got its greeting (or failed to open). */
  ready: Promise<HoldReport>;
  report(): Promise<HoldReport>;
  stop(): Promise<HoldReport>;
  kill(): void;
}

/** Opens `connections` TCP connections to vip:port from the client and keeps pinging each. */
export function labHoldConnections(opts: { name: string; vip: string; port: number; connections: number; intervalMs?: number; timeoutMs?: number }): HoldHandle {
  const i = parseLabInput("labHoldConnections", HoldInput, opts);
  const d = drive(i.name, ["--hold", String(i.connections), "--vip", i.vip, "--port", String(i.port), "--interval-ms", String(i.intervalMs ?? 200), "--timeout-ms", String(i.timeoutMs ?? 20_000)], 30_000);
  return {
    ready: d.ready.then((r) => HoldReport.parse(r)),
    report: async () => HoldReport.parse(await d.request("report")),
    stop: async () => HoldReport.parse(await d.request("stop")),
    kill: d.kill,
  };
}

export interface ProbeHandle {
  ready: Promise<unknown>;
  stop(): Promise<ProbeFinal>;
  kill(): void;
}

/** A new UDP flow to vip:port every `everyMs` (default 10) until stopped. */
export function labProbe(opts: { name: string; vip: string; port: number; everyMs?: number; timeoutMs?: number }): ProbeHandle {
  const i = parseLabInput("labProbe", ProbeInput, opts);
  const d = drive(i.name, ["--probe", "--vip", i.vip, "--port", String(i.port), "--every-ms", String(i.everyMs ?? 10), "--timeout-ms", String(i.timeoutMs ?? 1000)], 15_000);
  return { ready: d.ready, stop: async () => ProbeFinal.parse(await d.request("stop")), kill: d.kill };
}

/**
 * The longest silence in the answers (the failover time: the last answer
 * through the old master to the first through the new one), among answers
 * after `from` (ms since the epoch), with when it started.
 */
export function longestGap(probes: ProbeFinal["probes"], from = 0): { gapMs: number; lastBefore: number; firstAfter: number } | null {
  const answers = probes.map((p) => p[1]).filter((t): t is number => t !== null && t >= from).sort((a, b) => a - b);
  let best: { gapMs: number; lastBefore: number; firstAfter: number } | null = null;
  for (let k = 1; k < answers.length; k++) {
    const gap = answers[k]! - answers[k - 1]!;
    if (!best || gap > best.gapMs) best = { gapMs: gap, lastBefore: answers[k - 1]!, firstAfter: answers[k]! };
  }
  return best;
}
