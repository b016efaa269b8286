import ipaddr from "ipaddr.js";
import { z } from "zod";
import { checkIPv4 } from "../farms/address.ts";

/**
 * A cluster of balancers sharing one set of farms (issue 12): which nodes,
 * which links, which VRRP router, how connections are synced. One schema for
 * every boundary that takes a cluster's settings (the lab, the CLI, later the
 * database and the console's Cluster page), so bad settings get the same
 * message everywhere and change nothing.
 */

const got = (input: unknown) => `got ${JSON.stringify(input)}`;

const ipv4 = (what: string) =>
  z.string({ error: (iss) => `${what} must be an IPv4 address, ${got(iss.input)}` }).superRefine((v, ctx) => {
    const problem = checkIPv4(v);
    if (problem) ctx.addIssue({ code: "custom", message: `${what}: ${problem}` });
  });

/** "a.b.c.d/nn": a floating address and the prefix it is added with. */
const cidr = (what: string) =>
  z.string({ error: (iss) => `${what} must be "a.b.c.d/prefix", ${got(iss.input)}` }).superRefine((v, ctx) => {
    const m = /^([0-9.]+)\/(\d{1,2})$/.exec(v);
    const problem = m ? checkIPv4(m[1]!) : `"${v}" is not "a.b.c.d/prefix"`;
    if (problem) return ctx.addIssue({ code: "custom", message: `${what}: ${problem}` });
    if (Number(m![2]) > 32) ctx.addIssue({ code: "custom", message: `${what}: prefix must be 0..32, ${got(v)}` });
  });

/** Linux interface names: 1-15 characters, none of "/", ":" or white space (":" starts a label). */
const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;
const iface = (what: string) =>
  z
    .string({ error: (iss) => `${what} must be an interface name, ${got(iss.input)}` })
    .refine((v) => IFACE.test(v), { error: (iss) => `${what} must be 1-15 characters [A-Za-z0-9_.-], ${got(iss.input)}` });

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: (iss) => `${what} must be a number, ${got(iss.input)}` })
    .int({ error: (iss) => `${what} must be a whole number, ${got(iss.input)}` })
    .min(min, { error: (iss) => `${what} must be ${min}..${max}, ${got(iss.input)}` })
    .max(max, { error: (iss) => `${what} must be ${min}..${max}, ${got(iss.input)}` });

export const CLUSTER_MAX_NODES = 8;

export const ClusterNodeSchema = z
  .object({
    id: int("id", 1, CLUSTER_MAX_NODES),
    name: z
      .string({ error: (iss) => `name must be a string, ${got(iss.input)}` })
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: (iss) => `name must be 1-32 characters [a-z0-9-], ${got(iss.input)}` }),
    /** VRRP priority; all different, so which node wins an election never depends on timing. */
    priority: int("priority", 1, 254),
    /** The node's own address on the sync link: VRRP adverts (unicast) and conntrackd's sync go there. */
    syncAddress: ipv4("syncAddress"),
    /** The node's own addresses on the client and backend sides (conntrackd ignores connections from them: health checks, SSH). */
    clientAddress: ipv4("clientAddress").optional(),
    backendAddress: ipv4("backendAddress").optional(),
  })
  .strict();

export const ClusterConfigSchema = z
  .object({
    name: z
      .string({ error: (iss) => `name must be a string, ${got(iss.input)}` })
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: (iss) => `name must be 1-32 characters [a-z0-9-], ${got(iss.input)}` }),
    virtualRouterId: int("virtualRouterId", 1, 255),
    /**
     * VRRPv3 advertisement interval. VRRPv3 counts in centiseconds, so 10 ms
     * steps; a backup takes over after 3 missed adverts plus a skew below one
     * interval, so 100 ms moves the VIPs in about 0.35 s.
     */
    advertIntervalMs: int("advertIntervalMs", 10, 40_950)
      .refine((v) => v % 10 === 0, { error: (iss) => `advertIntervalMs must be a multiple of 10 (VRRPv3 counts centiseconds), ${got(iss.input)}` })
      .default(100),
    interfaces: z
      .object({
        /** Where the farms' VIPs (and the client-side gateway) live. */
        client: iface("interfaces.client").refine((v) => v.length <= 11, {
          error: (iss) => `interfaces.client must be at most 11 characters, so that the VIPs' label <interface>:vip fits the kernel's 15, ${got(iss.input)}`,
        }),
        /** Towards the backends: the floating backend gateway of DNAT farms lives here. */
        backend: iface("interfaces.backend"),
        /** The dedicated link between the nodes: VRRP and conntrackd. */
        sync: iface("interfaces.sync"),
      })
      .strict(),
    /** A floating address on the client side (the clients' route to the backends' network, when they need one). */
    clientGateway: cidr("clientGateway").optional(),
    /** The backends' default gateway, floating with the master: DNAT farms need it (replies must come back through the master). */
    backendGateway: cidr("backendGateway").optional(),
    /** Gratuitous ARP after becoming master: a delay before the second burst, repeats per burst, and a refresh while master (0: off). */
    garp: z
      .object({
        masterDelayS: int("garp.masterDelayS", 0, 60).default(1),
        masterRepeat: int("garp.masterRepeat", 1, 20).default(3),
        refreshS: int("garp.refreshS", 0, 3600).default(60),
      })
      .strict()
      .default({ masterDelayS: 1, masterRepeat: 3, refreshS: 60 }),
    conntrackd: z
      .object({
        enabled: z.boolean({ error: (iss) => `conntrackd.enabled must be true or false, ${got(iss.input)}` }).default(true),
        port: int("conntrackd.port", 1, 65535).default(3780),
        /** More than two nodes: conntrackd's UDP channel has one peer, so the sync goes to a multicast group. */
        multicastGroup: z
          .string({ error: (iss) => `conntrackd.multicastGroup must be an IPv4 multicast address, ${got(iss.input)}` })
          .refine((v) => ipaddr.IPv4.isValidFourPartDecimal(v) && ipaddr.IPv4.parse(v).range() === "multicast", {
            error: (iss) => `conntrackd.multicastGroup must be an IPv4 multicast address (224.0.0.0/4), ${got(iss.input)}`,
          })
          .optional(),
      })
      .strict()
      .default({ enabled: true, port: 3780 }),
    nodes: z
      .array(ClusterNodeSchema, { error: (iss) => `nodes must be a list of nodes, ${got(iss.input)}` })
      .min(2, { error: "a cluster has at least 2 nodes" })
      .max(CLUSTER_MAX_NODES, { error: `a cluster has at most ${CLUSTER_MAX_NODES} nodes` }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const unique = (key: "id" | "name" | "priority" | "syncAddress") => {
      const seen = new Map<unknown, number>();
      c.nodes.forEach((n, i) => {
        const prev = seen.get(n[key]);
        if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["nodes", i, key], message: `${key} ${JSON.stringify(n[key])} is also node ${prev + 1}'s` });
        else seen.set(n[key], i);
      });
    };
    unique("id");
    unique("name");
    unique("priority");
    unique("syncAddress");
    if (c.nodes.length > 2 && c.conntrackd.enabled && !c.conntrackd.multicastGroup) {
      ctx.addIssue({ code: "custom", path: ["conntrackd", "multicastGroup"], message: `${c.nodes.length} nodes need conntrackd.multicastGroup: conntrackd's UDP channel reaches one peer only` });
    }
    const names = [c.interfaces.client, c.interfaces.backend, c.interfaces.sync];
    if (new Set(names).size !== names.length) ctx.addIssue({ code: "custom", path: ["interfaces"], message: `client, backend and sync must be three different interfaces, got ${names.join(", ")}` });
  });

export type ClusterConfig = z.output<typeof ClusterConfigSchema>;
export type ClusterConfigInput = z.input<typeof ClusterConfigSchema>;
export type ClusterNode = z.output<typeof ClusterNodeSchema>;

export class ClusterConfigError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid cluster settings: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`);
    this.name = "ClusterConfigError";
  }
}

/** Validates cluster settings; throws ClusterConfigError naming each bad field. */
export function parseClusterConfig(input: unknown): ClusterConfig {
  const r = ClusterConfigSchema.safeParse(input);
  if (r.success) return r.data;
  throw new ClusterConfigError(r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })));
}

export function clusterNode(config: ClusterConfig, id: number): ClusterNode {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) throw new ClusterConfigError([{ path: "node", message: `cluster ${config.name} has no node ${id} (nodes: ${config.nodes.map((n) => n.id).join(", ")})` }]);
  return node;
}

/** The address part of "a.b.c.d/nn". */
export const addressOf = (cidrText: string) => cidrText.split("/")[0]!;
