import { z } from "zod";
import { checkIPv4 } from "./address.ts";
import { formatMark, MARK_MAX, MARK_MIN, parseMark } from "./marks.ts";
import { formatPortItems, parsePortSpec, portsOverlap, type PortItem } from "./ports.ts";

/**
 * The one schema every entry point validates with: the declarative file, the
 * CLI, the console's forms and server actions, and the applier itself.
 */

/** Farm names end up in rule comments (FARM_<name>_<n>_) and must fit chain-name limits. */
export const FARM_NAME_MAX = 20;
export const FARM_NAME_PATTERN = /^[A-Za-z0-9_-]+$/;
export const MAX_BACKENDS = 64;

export const PROTOCOLS = ["tcp", "udp", "sctp", "all"] as const;
export const MODES = ["nat", "dnat"] as const;
export const FARM_STATUSES = ["up", "stopped"] as const;
export const BACKEND_STATES = ["up", "down", "maintenance"] as const;
/** weight: random by weight; roundrobin: exact rotation; sourcehash: a client keeps its backend; priority: best level only. */
export const SCHEDULERS = ["weight", "roundrobin", "sourcehash", "priority"] as const;
export const PERSISTENCE = ["none", "srcip"] as const;
export const PERSISTENCE_TTL_MAX = 86_400;
export const PRIORITY_MAX = 9;
export const CHECK_TYPES = ["tcp", "udp", "http"] as const;

export type Protocol = (typeof PROTOCOLS)[number];
export type Mode = (typeof MODES)[number];

const ipv4 = z.string({ error: "must be an IPv4 address written as text" }).trim().check((ctx) => {
  const problem = checkIPv4(ctx.value);
  if (problem) ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
});

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a whole number from ${min} to ${max}` })
    .int({ error: `${what} must be a whole number from ${min} to ${max}` })
    .min(min, { error: `${what} must be a whole number from ${min} to ${max}` })
    .max(max, { error: `${what} must be a whole number from ${min} to ${max}` });

const markField = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const mark = parseMark(value);
  if (mark === null) {
    ctx.addIssue({
      code: "custom",
      message: `mark must be a number from ${formatMark(MARK_MIN)} to ${formatMark(MARK_MAX)} (e.g. "0x20c"), got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return mark;
});

export const BackendSchema = z
  .object({
    ip: ipv4,
    port: wholeNumber("port", 1, 65535).nullish().transform((p) => p ?? null),
    weight: wholeNumber("weight", 1, 100).default(1),
    mark: markField.optional(),
    state: z.enum(BACKEND_STATES, { error: `state must be one of ${BACKEND_STATES.join(", ")}` }).default("up"),
    /** With the priority scheduler only the best (lowest) level that has a backend up receives traffic. */
    priority: wholeNumber("priority", 1, PRIORITY_MAX).default(1),
  })
  .strict();

/**
 * A farm's health check: probes each backend from the load balancer every
 * `interval` seconds; `failures` failed probes in a row take a backend out,
 * `passes` good ones bring it back.
 */
export const HealthCheckSchema = z
  .object({
    type: z.enum(CHECK_TYPES, { error: `type must be one of ${CHECK_TYPES.join(", ")}` }).default("tcp"),
    interval: wholeNumber("interval", 1, 3600).default(5),
    timeout: wholeNumber("timeout", 1, 60).default(2),
    failures: wholeNumber("failures", 1, 10).default(3),
    passes: wholeNumber("passes", 1, 10).default(2),
    /** Probe this port instead of the backend's. */
    port: wholeNumber("port", 1, 65535).optional(),
    /** http: the path to GET and the status that means healthy. */
    path: z
      .string({ error: "path must be text" })
      .max(256, { error: "path must be at most 256 characters" })
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/, { error: 'path must start with "/" and hold only URL characters' })
      .optional(),
    expectStatus: wholeNumber("expectStatus", 100, 599).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.timeout >= c.interval) ctx.addIssue({ code: "custom", path: ["timeout"], message: `timeout (${c.timeout} s) must be shorter than the interval (${c.interval} s)` });
    if (c.type !== "http" && (c.path !== undefined || c.expectStatus !== undefined)) {
      ctx.addIssue({ code: "custom", path: [c.path !== undefined ? "path" : "expectStatus"], message: "path and expectStatus belong to http checks" });
    }
  });
export type HealthCheck = z.output<typeof HealthCheckSchema>;

const farmObject = z
  .object({
    name: z
      .string({ error: "name is required" })
      .trim()
      .min(1, { error: "name is required" })
      .max(FARM_NAME_MAX, { error: `name must be at most ${FARM_NAME_MAX} characters` })
      .regex(FARM_NAME_PATTERN, { error: "name may hold only letters, digits, _ and -" }),
    vip: ipv4,
    ports: z
      .union([z.string(), z.number()], { error: 'ports must be text such as "443", "80,443", "8000:8100" or "*"' })
      .transform((v) => String(v).trim()),
    protocol: z.enum(PROTOCOLS, { error: `protocol must be one of ${PROTOCOLS.join(", ")}` }),
    mode: z.enum(MODES, { error: 'mode must be "nat" (SNAT to the VIP) or "dnat"' }),
    status: z.enum(FARM_STATUSES, { error: `status must be one of ${FARM_STATUSES.join(", ")}` }).default("up"),
    scheduler: z.enum(SCHEDULERS, { error: `scheduler must be one of ${SCHEDULERS.join(", ")}` }).default("weight"),
    persistence: z.enum(PERSISTENCE, { error: 'persistence must be "none" or "srcip"' }).default("none"),
    /** Seconds a client stays with its backend after its last new connection (persistence "srcip"). */
    persistenceTtl: wholeNumber("persistenceTtl", 1, PERSISTENCE_TTL_MAX).default(120),
    healthcheck: HealthCheckSchema.optional(),
    /** The VIP may be one of the balancer's own (unlabelled) addresses: the operator says the capture is meant. */
    allowLocalVip: z.boolean({ error: "allowLocalVip must be true or false" }).optional(),
    backends: z.array(BackendSchema).max(MAX_BACKENDS, { error: `a farm holds at most ${MAX_BACKENDS} backends` }).default([]),
  })
  .strict();

export const FarmSchema = farmObject.transform((farm, ctx) => {
  const parsed = parsePortSpec(farm.ports);
  if (!parsed.ok) {
    ctx.addIssue({ code: "custom", path: ["ports"], message: parsed.error });
    return z.NEVER;
  }
  if (farm.healthcheck && farm.healthcheck.port === undefined) {
    const single = parsed.items.length === 1 && parsed.items[0]!.from === parsed.items[0]!.to;
    farm.backends.forEach((b, i) => {
      if (b.port === null && !single) {
        ctx.addIssue({ code: "custom", path: ["backends", i, "port"], message: "the health check needs a port: give the backend a port, the check a port, or the farm a single port" });
      }
    });
  }
  const check = farm.healthcheck?.type;
  if (check && ((farm.protocol === "tcp" && check === "udp") || (farm.protocol === "udp" && check !== "udp") || farm.protocol === "sctp")) {
    ctx.addIssue({ code: "custom", path: ["healthcheck", "type"], message: `a ${check} check cannot probe a ${farm.protocol} farm` });
  }
  if (farm.protocol === "all" && parsed.items.length > 0) {
    ctx.addIssue({ code: "custom", path: ["ports"], message: 'protocol "all" balances every port: ports must be "*"' });
  }
  const seen = new Map<string, number>();
  const marks = new Map<number, number>();
  farm.backends.forEach((b, i) => {
    if (farm.protocol === "all" && b.port !== null) {
      ctx.addIssue({ code: "custom", path: ["backends", i, "port"], message: 'with protocol "all" a backend cannot set a port (the client\'s port is kept)' });
    }
    const key = `${b.ip}:${b.port ?? "*"}`;
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: ["backends", i, "ip"], message: `duplicate backend ${key} (same as backend ${first})` });
    } else seen.set(key, i);
    if (b.mark !== undefined) {
      const other = marks.get(b.mark);
      if (other !== undefined) {
        ctx.addIssue({ code: "custom", path: ["backends", i, "mark"], message: `mark ${formatMark(b.mark)} is already used by backend ${other}` });
      } else marks.set(b.mark, i);
    }
  });
  return { ...farm, ports: formatPortItems(parsed.items) };
});

/** A validated farm's ports as items (validation guarantees they parse). */
export function farmPortItems(farm: { ports: string }): PortItem[] {
  const parsed = parsePortSpec(farm.ports);
  if (!parsed.ok) throw new Error(`invalid ports "${farm.ports}": ${parsed.error}`);
  return parsed.items;
}

export type FarmInput = z.input<typeof FarmSchema>;
export type Farm = z.output<typeof FarmSchema>;
export type Backend = z.output<typeof BackendSchema>;

/** A farm whose every backend holds its mark: what the renderer accepts. */
export type ResolvedBackend = Omit<Backend, "mark"> & { mark: number };
export type ResolvedFarm = Omit<Farm, "backends"> & { backends: ResolvedBackend[] };

function protocolsOverlap(a: Protocol, b: Protocol): boolean {
  return a === "all" || b === "all" || a === b;
}


/** How many marks natfarm can hand out: every backend of every farm needs its own. */
export const MARK_CAPACITY = MARK_MAX - MARK_MIN + 1;

/**
 * Cross-farm rules: unique names, no overlapping VIP+protocol+port, unique
 * marks, no VIP that is also a backend's address, and no more backends than
 * marks. A conflict between two farms is reported on the later one (the
 * console puts the farm being changed last), under its own field.
 */
export function checkFarmSet(farms: Farm[], addIssue: (path: (string | number)[], message: string) => void): void {
  const names = new Map<string, number>();
  const marks = new Map<number, string>();
  const byVip = new Map<string, number[]>();
  /** The first farm on each VIP, and the first backend on each address, seen so far. */
  const vipFarm = new Map<string, number>();
  const backendAt = new Map<string, [farm: number, backend: number]>();
  const items = farms.map(farmPortItems);
  let backends = 0;
  let explicitMarks = 0;
  farms.forEach((farm, i) => {
    backends += farm.backends.length;
    for (const b of farm.backends) if (b.mark !== undefined) explicitMarks++;
    // A backend on a VIP: the balancer would translate the farm's connections to an address it answers for itself.
    const asBackend = backendAt.get(farm.vip);
    if (asBackend) {
      const [f, k] = asBackend;
      addIssue([i, "vip"], `${farm.vip} is backend ${k} (${farms[f]!.backends[k]!.ip}) of farm "${farms[f]!.name}": a VIP cannot also be a backend's address`);
    }
    farm.backends.forEach((b, k) => {
      if (b.ip === farm.vip) {
        addIssue([i, "backends", k, "ip"], `${b.ip} is this farm's own VIP: a backend cannot be the address the farm balances`);
      } else {
        const owner = vipFarm.get(b.ip);
        if (owner !== undefined) addIssue([i, "backends", k, "ip"], `${b.ip} is the VIP of farm "${farms[owner]!.name}": a backend cannot be a VIP`);
      }
    });
    for (const [k, b] of farm.backends.entries()) if (!backendAt.has(b.ip)) backendAt.set(b.ip, [i, k]);
    if (!vipFarm.has(farm.vip)) vipFarm.set(farm.vip, i);

    const other = names.get(farm.name);
    if (other !== undefined) addIssue([i, "name"], `farm name "${farm.name}" is already used by farm ${other}`);
    else names.set(farm.name, i);
    // Only farms on the same VIP can collide: compare within a VIP, not all pairs.
    const sameVip = byVip.get(farm.vip) ?? [];
    for (const j of sameVip) {
      const prev = farms[j]!;
      if (protocolsOverlap(prev.protocol, farm.protocol) && portsOverlap(items[j]!, items[i]!)) {
        addIssue(
          [i, "ports"],
          `${farm.vip} ${farm.protocol}/${farm.ports} overlaps farm "${prev.name}" (${prev.vip} ${prev.protocol}/${prev.ports})`,
        );
      }
    }
    byVip.set(farm.vip, [...sameVip, i]);
    farm.backends.forEach((b, k) => {
      if (b.mark === undefined) return;
      const owner = marks.get(b.mark);
      if (owner !== undefined && !owner.startsWith(`${farm.name}#`)) {
        addIssue([i, "backends", k, "mark"], `mark ${formatMark(b.mark)} is already used by farm "${owner.split("#")[0]}"`);
      } else marks.set(b.mark, `${farm.name}#${k}`);
    });
  });
  if (backends > MARK_CAPACITY) reportMarkShortage(farms, backends, explicitMarks, addIssue);
}

/**
 * More backends than marks: the lowest free marks go to the backends without
 * one in order, so the first backend left without a mark is the one after
 * (capacity - explicit marks) unmarked backends. (A backend that keeps a mark
 * the kernel gives it takes one of those free marks too: the count is exact.)
 */
function reportMarkShortage(farms: Farm[], backends: number, explicitMarks: number, addIssue: (path: (string | number)[], message: string) => void): void {
  let free = MARK_CAPACITY - explicitMarks;
  for (const [i, farm] of farms.entries()) {
    for (const [k, b] of farm.backends.entries()) {
      if (b.mark !== undefined || free-- > 0) continue;
      addIssue(
        [i, "backends", k, "mark"],
        `no netfilter mark left for this backend: the farms hold ${backends} backends, the mark range ${formatMark(MARK_MIN)}..${formatMark(MARK_MAX)} holds ${MARK_CAPACITY}`,
      );
      return;
    }
  }
}

export const FarmListSchema = z.array(FarmSchema).superRefine((farms, ctx) => {
  checkFarmSet(farms, (path, message) => ctx.addIssue({ code: "custom", path, message }));
});

/** The declarative file: `{"farms":[...]}`. */
export const FarmFileSchema = z
  .object({ farms: FarmListSchema })
  .strict();

export type FarmFile = z.output<typeof FarmFileSchema>;
