import { z } from "zod";
import { runPrivileged } from "../privileged/run.ts";
import {
  ConcurrencySchema,
  ConnectionsSchema,
  DurationMsSchema,
  LabNameSchema,
  parseLabInput,
  PortSchema,
  ProtocolSchema,
  TimeoutMsSchema,
  TrafficDestinationSchema,
  VipSchema,
} from "./names.ts";
import { listNamespaces } from "./netns.ts";
import { labScriptPath } from "./servers.ts";
import { labEnsureClientAddresses, LabNotFoundError } from "./topology.ts";

const BackendTallySchema = z.object({ count: z.number(), peers: z.record(z.string(), z.number()) });

export const TrafficResultSchema = z.object({
  protocol: z.enum(["tcp", "udp"]),
  vip: z.string(),
  port: z.number(),
  connections: z.number(),
  ok: z.number(),
  failed: z.number(),
  /** error code or message (ECONNREFUSED, timeout, ...) -> count */
  errors: z.record(z.string(), z.number()),
  /** backend name ("b0") -> replies, and the peer addresses that backend saw */
  backends: z.record(z.string(), BackendTallySchema),
  /** With `sources`: source address -> backend name -> replies. */
  bySource: z.record(z.string(), z.record(z.string(), z.number())).optional(),
  durationMs: z.number(),
});
export type TrafficResult = z.infer<typeof TrafficResultSchema>;

export const HoldResultSchema = z.object({
  mode: z.literal("hold"),
  protocol: z.enum(["tcp", "udp"]),
  vip: z.string(),
  port: z.number(),
  sent: z.number(),
  received: z.number(),
  failed: z.number(),
  errors: z.record(z.string(), z.number()),
  backends: z.record(z.string(), BackendTallySchema),
  /** who ended the connection: "client" (duration over), "server" (FIN/RST from the far end), "error" */
  closedBy: z.enum(["client", "server", "error"]),
  durationMs: z.number(),
});
export type HoldResult = z.infer<typeof HoldResultSchema>;

export const TrafficInput = z.object({
  name: LabNameSchema,
  vip: TrafficDestinationSchema,
  port: PortSchema,
  connections: ConnectionsSchema,
  protocol: ProtocolSchema.optional(),
  concurrency: ConcurrencySchema.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
  sources: z.array(VipSchema).min(1).max(254).optional(),
});

export const HoldInput = z.object({
  name: LabNameSchema,
  vip: TrafficDestinationSchema,
  port: PortSchema,
  durationMs: DurationMsSchema,
  intervalMs: DurationMsSchema.optional(),
  protocol: ProtocolSchema.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
});

async function runClient(name: string, args: string[], timeoutMs: number): Promise<unknown> {
  const clientNs = `${name}-client`;
  if (!(await listNamespaces()).includes(clientNs)) throw new LabNotFoundError(name);
  const { stdout } = await runPrivileged(
    "ip",
    ["netns", "exec", clientNs, process.execPath, labScriptPath("lab-client.mjs"), ...args],
    { timeoutMs },
  );
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`lab client printed no JSON result: ${JSON.stringify(stdout.slice(0, 500))}`);
  }
}

/**
 * Opens `connections` NEW connections (TCP) or one-datagram flows (UDP) from
 * the client namespace to vip:port, each from its own source port, and counts
 * which backend answered and which peer address it saw. `vip` may also be a
 * backend address (203.0.113.x), reached through the LB's plain routing.
 */
export async function labTraffic(opts: {
  name: string;
  vip: string;
  port: number;
  connections: number;
  protocol?: "tcp" | "udp";
  concurrency?: number;
  /** per connection / datagram; default 3000 */
  timeoutMs?: number;
  /** Client source addresses to cycle through (added to the client when missing), to act as many clients. */
  sources?: string[];
}): Promise<TrafficResult> {
  const input = parseLabInput("labTraffic", TrafficInput, opts);
  if (input.sources) await labEnsureClientAddresses({ name: input.name, addresses: input.sources });
  const concurrency = input.concurrency ?? 32;
  const timeoutMs = input.timeoutMs ?? 3000;
  const args = [
    "--protocol",
    input.protocol ?? "tcp",
    "--vip",
    input.vip,
    "--port",
    String(input.port),
    "--connections",
    String(input.connections),
    "--concurrency",
    String(concurrency),
    "--timeout-ms",
    String(timeoutMs),
    ...(input.sources ? ["--sources", input.sources.join(",")] : []),
  ];
  // Worst case every wave of `concurrency` attempts waits the full timeout.
  const budget = Math.ceil(input.connections / concurrency) * (timeoutMs + 100) + 15_000;
  return TrafficResultSchema.parse(await runClient(input.name, args, budget));
}

/**
 * Keeps ONE connection (TCP) or one source port (UDP) to vip:port for
 * `durationMs`, exchanging a line every `intervalMs` (default 200). Start it
 * without awaiting to change rules while it runs (drain, persistence tests).
 */
export async function labHold(opts: {
  name: string;
  vip: string;
  port: number;
  durationMs: number;
  intervalMs?: number;
  protocol?: "tcp" | "udp";
  timeoutMs?: number;
}): Promise<HoldResult> {
  const input = parseLabInput("labHold", HoldInput, opts);
  const timeoutMs = input.timeoutMs ?? 3000;
  const args = [
    "--hold",
    "--protocol",
    input.protocol ?? "tcp",
    "--vip",
    input.vip,
    "--port",
    String(input.port),
    "--duration-ms",
    String(input.durationMs),
    "--interval-ms",
    String(input.intervalMs ?? 200),
    "--timeout-ms",
    String(timeoutMs),
  ];
  return HoldResultSchema.parse(await runClient(input.name, args, input.durationMs + 2 * timeoutMs + 15_000));
}
