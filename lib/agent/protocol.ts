import { z } from "zod";
import { FARM_NAME_MAX, FARM_NAME_PATTERN } from "../farms/schema.ts";
import { MARK_MAX, MARK_MIN } from "../farms/marks.ts";
import { LabUpInput, NameOnly, VipInput, ClientAddressesInput, IndexInput } from "../lab/topology.ts";
import { ClusterMaintenanceInput } from "../lab/cluster-console.ts";
import { NodeKeepalivedInput } from "../lab/cluster.ts";
import { HoldInput, TrafficInput } from "../lab/traffic.ts";
import { ENGINES } from "../kernel/engine.ts";
import { TargetSchema } from "../privileged/target.ts";

/**
 * The agent's wire protocol: one JSON object per line over a Unix socket.
 * Every request names a typed operation; none takes a program name, an
 * argument list or rule text. Requests are validated on arrival (farm sets
 * then again by the applier with the shared farm schema) and a request that
 * does not parse changes nothing.
 *
 *   → {"id":1,"op":"apply","params":{"target":"netns:x-lb","farms":[...],"only":["web"]}}
 *   ← {"id":1,"ok":true,"result":{...}}   or   {"id":1,"ok":false,"error":{"kind":"invalid",...}}
 *
 * Operations on rules (apply, the drift reads, the table reads) name their
 * engine, "iptables" (also when left out) or "nftables". One agent serves
 * both: the engine is a property of the request's target state, not of the
 * agent, and an engine switch is one full apply naming the new engine (the
 * agent then removes natfarm's rules from the other).
 */
export const AGENT_PROTOCOL = 1;
/** A set of 5,000 farms of 4 backends is ~2.5 MB of JSON: room for ten times that, and no more. */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
export const MAX_FARMS = 50_000;

const farmName = z.string().max(FARM_NAME_MAX).regex(FARM_NAME_PATTERN, { error: "farm names hold only letters, digits, _ and -" });
/** Farm objects are checked by the applier with the shared FarmSchema (cached per farm): here only their count and shape. */
const farmSet = z.array(z.record(z.string(), z.unknown()), { error: "farms must be an array of farm objects" }).max(MAX_FARMS, { error: `at most ${MAX_FARMS} farms` });
const oneFarm = z.record(z.string(), z.unknown(), { error: "farm must be a farm object" });
const target = z.string({ error: 'target must be "host" or "netns:<name>"' }).max(80).pipe(TargetSchema);
const engine = z.enum(ENGINES, { error: 'engine must be "iptables" or "nftables"' }).optional();

const op = <N extends string, P extends z.ZodType>(name: N, params: P) => z.object({ id: z.number().int().nonnegative(), op: z.literal(name), params }).strict();

export const AgentRequestSchema = z.discriminatedUnion("op", [
  op("ping", z.object({}).strict()),
  op(
    "apply",
    z
      .object({
        target,
        engine,
        /** The whole set, or `delta`: the farms that differ from a set this agent was sent before. */
        farms: farmSet.optional(),
        delta: z.object({ base: z.string().regex(/^[0-9a-f]{16}$/), upsert: farmSet, remove: z.array(farmName).max(MAX_FARMS) }).strict().optional(),
        only: z.array(farmName).max(MAX_FARMS).optional(),
        dryRun: z.boolean().optional(),
        /** Test hook, honoured only by an agent started with test hooks on. */
        injectFault: z.enum(["mangle", "nat", "last"]).optional(),
      })
      .strict()
      .refine((p) => (p.farms === undefined) !== (p.delta === undefined), { error: "send either farms or delta" }),
  ),
  op("driftReport", z.object({ target, engine, farms: farmSet }).strict()),
  op("driftOfFarm", z.object({ target, engine, farm: oneFarm }).strict()),
  op("driftOfFarms", z.object({ target, engine, farms: farmSet }).strict()),
  op("readTables", z.object({ target, engine }).strict()),
  op("readNatfarmTables", z.object({ target, engine, farm: farmName.optional(), maxRules: z.number().int().min(1).max(1_000_000).optional(), translations: z.literal(true).optional() }).strict()),
  op("connectionStats", z.object({ target }).strict()),
  // Zeroes natfarm's own counters only: all of them, or one farm's (a farm with no rules zeroes nothing).
  op("resetCounters", z.object({ target, engine, farm: farmName.optional(), injectFault: z.boolean().optional() }).strict()),
  op("cutConnections", z.object({ target, mark: z.number().int().min(MARK_MIN).max(MARK_MAX) }).strict()),
  op("checkLocalVips", z.object({ target, farms: farmSet }).strict()),
  op("lab.up", LabUpInput.strict()),
  op("lab.down", NameOnly.strict()),
  op("lab.status", NameOnly.strict()),
  op("lab.traffic", TrafficInput.strict()),
  op("lab.hold", HoldInput.strict()),
  op("lab.ensureVip", VipInput.strict()),
  op("lab.removeVip", VipInput.strict()),
  op("lab.ensureClientAddresses", ClientAddressesInput.strict()),
  op("lab.stopBackendServer", IndexInput.strict()),
  op("lab.startBackendServer", IndexInput.strict()),
  // A cluster lab is named by its lab name: the agent runs it only when it runs that lab.
  op("cluster.status", NameOnly.strict()),
  op("cluster.maintenance", ClusterMaintenanceInput),
  // Only for a node whose namespace this agent serves (the server checks): each node's own sync loop.
  op("cluster.keepalived", NodeKeepalivedInput),
]);
export type AgentRequest = z.output<typeof AgentRequestSchema>;
export type AgentOp = AgentRequest["op"];

/** How an error travels, so the client can throw the same class the direct path throws. */
export interface AgentErrorBody {
  kind: "bad-request" | "refused" | "invalid" | "apply" | "busy" | "lab-input" | "lab-not-found" | "stale-set" | "cluster-refused" | "failed";
  message: string;
  /** invalid: the validation sentences; bad-request: the request's own field errors. */
  issues?: string[];
  iptablesMessage?: string;
  rolledBack?: "nothing-committed" | "rolled-back" | "rollback-failed";
  payload?: string;
  rollbackMessage?: string;
  operation?: string;
  fields?: { field: string; message: string }[];
}

export type AgentResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: AgentErrorBody };

export { DEFAULT_AGENT_SOCKET, agentSocketPath } from "./socket-path.ts";
