import { z } from "zod";
import { checkIPv4 } from "./address.ts";
import { formatMark, isBackendMark, MARK_CAPACITY, MARK_RANGES, parseMark } from "./marks.ts";
import { formatPortItems, parsePortSpec, portsOverlap, type PortItem } from "./ports.ts";

// In the browser (a form checks an edit with these schemas before it shows it as sent), zod's
// compiled parsers would first probe `new Function`: the console's CSP forbids eval, and the
// probe, though caught, is reported as a violation on every page that parses. The server keeps them.
if (typeof window !== "undefined") z.config({ jitless: true });

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

/** Refinements run whatever failed before them (the checks themselves look only at what parsed). */
const EVERY_PASS = () => true;
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

/** Ports are checked in the field itself, so that their error comes in the same pass as every other field's. */
const portsField = z
  .union([z.string(), z.number()], { error: 'ports must be text such as "443", "80,443", "8000:8100" or "*"' })
  .transform((v, ctx) => {
    const parsed = parsePortSpec(String(v));
    if (!parsed.ok) {
      ctx.addIssue({ code: "custom", message: parsed.error });
      return z.NEVER;
    }
    return formatPortItems(parsed.items);
  });

const markField = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const mark = parseMark(value);
  if (mark === null) {
    ctx.addIssue({
      code: "custom",
      message: `mark must be a number in ${MARK_RANGES} (e.g. "0x20c"), got ${JSON.stringify(value)}`,
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
  .superRefine(
    (c, ctx) => {
      if (!c || typeof c !== "object") return;
      const num = (x: unknown) => typeof x === "number" && Number.isInteger(x);
      if (num(c.timeout) && num(c.interval) && c.timeout >= c.interval) ctx.addIssue({ code: "custom", path: ["timeout"], message: `timeout (${c.timeout} s) must be shorter than the interval (${c.interval} s)` });
      if ((CHECK_TYPES as readonly unknown[]).includes(c.type) && c.type !== "http" && (c.path !== undefined || c.expectStatus !== undefined)) {
        ctx.addIssue({ code: "custom", path: [c.path !== undefined ? "path" : "expectStatus"], message: "path and expectStatus belong to http checks" });
      }
    },
    { when: EVERY_PASS },
  );
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
    ports: portsField,
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

/**
 * Checks across a farm's fields. They run in the same pass as the fields'
 * own checks (zod skips refinements once a field failed, unless told
 * otherwise: `when`), on the fields that parsed, so an operator sees every
 * error at once: a duplicate backend together with a bad VIP and port 0.
 */
export const FarmSchema = farmObject.superRefine(
  (raw, ctx) => {
    const farm = loosen(raw);
    if (!farm) return;
    const items = farm.ports === undefined ? undefined : farmPortItems({ ports: farm.ports });
    if (raw.healthcheck && typeof raw.healthcheck === "object" && raw.healthcheck.port === undefined && items) {
      const single = items.length === 1 && items[0]!.from === items[0]!.to;
      farm.backends.forEach((b, i) => {
        if (b.port === null && !single) {
          ctx.addIssue({ code: "custom", path: ["backends", i, "port"], message: "the health check needs a port: give the backend a port, the check a port, or the farm a single port" });
        }
      });
    }
    const check = raw.healthcheck && typeof raw.healthcheck === "object" ? raw.healthcheck.type : undefined;
    const protocol = farm.protocol;
    if (protocol && (CHECK_TYPES as readonly unknown[]).includes(check) && ((protocol === "tcp" && check === "udp") || (protocol === "udp" && check !== "udp") || protocol === "sctp")) {
      ctx.addIssue({ code: "custom", path: ["healthcheck", "type"], message: `a ${check} check cannot probe a ${protocol} farm` });
    }
    if (protocol === "all" && items && items.length > 0) {
      ctx.addIssue({ code: "custom", path: ["ports"], message: 'protocol "all" balances every port: ports must be "*"' });
    }
    const seen = new Map<string, number>();
    const marks = new Map<number, number>();
    farm.backends.forEach((b, i) => {
      if (protocol === "all" && b.port !== null && b.port !== undefined) {
        ctx.addIssue({ code: "custom", path: ["backends", i, "port"], message: 'with protocol "all" a backend cannot set a port (the client\'s port is kept)' });
      }
      if (b.ip !== undefined && b.port !== undefined) {
        const key = `${b.ip}:${b.port ?? "*"}`;
        const first = seen.get(key);
        if (first !== undefined) {
          ctx.addIssue({ code: "custom", path: ["backends", i, "ip"], message: `duplicate backend ${key} (same as backend ${first + 1})` });
        } else seen.set(key, i);
      }
      if (b.mark !== undefined) {
        const other = marks.get(b.mark);
        if (other !== undefined) {
          ctx.addIssue({ code: "custom", path: ["backends", i, "mark"], message: `mark ${formatMark(b.mark)} is already used by backend ${other + 1}` });
        } else marks.set(b.mark, i);
      }
    });
  },
  { when: EVERY_PASS },
);

/**
 * What of a farm can be relied on while some of its fields failed: every
 * field that holds a valid value, the others undefined (a backend's port:
 * null keeps the client's port, undefined is not known). The checks across
 * fields and across farms look at these only.
 */
interface LooseBackend {
  ip?: string;
  port?: number | null;
  mark?: number;
}
interface LooseFarm {
  name?: string;
  vip?: string;
  ports?: string;
  protocol?: Protocol;
  backends: LooseBackend[];
}

const isPort = (p: unknown): p is number => typeof p === "number" && Number.isInteger(p) && p >= 1 && p <= 65535;

function loosen(raw: unknown): LooseFarm | null {
  if (!raw || typeof raw !== "object") return null;
  const f = raw as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === "string" ? v.trim() : undefined);
  const name = text(f.name);
  const vip = text(f.vip);
  const ports = typeof f.ports === "string" && parsePortSpec(f.ports).ok ? f.ports : undefined;
  const backends = (Array.isArray(f.backends) ? f.backends : []).map((b): LooseBackend => {
    if (!b || typeof b !== "object") return {};
    const x = b as Record<string, unknown>;
    const ip = text(x.ip);
    const port = x.port === null || x.port === undefined ? null : isPort(x.port) ? x.port : undefined;
    const mark = typeof x.mark === "number" && isBackendMark(x.mark) ? x.mark : undefined;
    return { ip: ip !== undefined && !checkIPv4(ip) ? ip : undefined, port, mark };
  });
  return {
    name: name && name.length <= FARM_NAME_MAX && FARM_NAME_PATTERN.test(name) ? name : undefined,
    vip: vip !== undefined && !checkIPv4(vip) ? vip : undefined,
    ports,
    protocol: (PROTOCOLS as readonly unknown[]).includes(f.protocol) ? (f.protocol as Protocol) : undefined,
    backends,
  };
}

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


export { MARK_CAPACITY } from "./marks.ts";

/**
 * Cross-farm rules: unique names, no overlapping VIP+protocol+port, unique
 * marks, no VIP that is also a backend's address, and no more backends than
 * marks. A conflict between two farms is reported on the later one (the
 * console puts the farm being changed last), under its own field. Fields
 * that failed their own check are left out (FarmListSchema passes loosened
 * farms), so these conflicts are reported in the same pass as those errors.
 */
export function checkFarmSet(farms: readonly (Farm | LooseFarm)[], addIssue: (path: (string | number)[], message: string) => void): void {
  const names = new Map<string, number>();
  const marks = new Map<number, string>();
  const byVip = new Map<string, number[]>();
  /** The first farm on each VIP, and the first backend on each address, seen so far. */
  const vipFarm = new Map<string, number>();
  const backendAt = new Map<string, [farm: number, backend: number]>();
  const items = farms.map((f) => (f.ports === undefined ? undefined : farmPortItems({ ports: f.ports })));
  let backends = 0;
  let explicitMarks = 0;
  farms.forEach((farm, i) => {
    backends += farm.backends.length;
    for (const b of farm.backends) if (b.mark !== undefined) explicitMarks++;
    const vip = farm.vip;
    // A backend on a VIP: the balancer would translate the farm's connections to an address it answers for itself.
    const asBackend = vip === undefined ? undefined : backendAt.get(vip);
    if (asBackend) {
      const [f, k] = asBackend;
      addIssue([i, "vip"], `${vip} is backend ${k + 1} (${farms[f]!.backends[k]!.ip}) of farm "${farms[f]!.name}": a VIP cannot also be a backend's address`);
    }
    farm.backends.forEach((b, k) => {
      if (b.ip === undefined) return;
      if (b.ip === vip) {
        addIssue([i, "backends", k, "ip"], `${b.ip} is this farm's own VIP: a backend cannot be the address the farm balances`);
      } else {
        const owner = vipFarm.get(b.ip);
        if (owner !== undefined) addIssue([i, "backends", k, "ip"], `${b.ip} is the VIP of farm "${farms[owner]!.name}": a backend cannot be a VIP`);
      }
    });
    for (const [k, b] of farm.backends.entries()) if (b.ip !== undefined && !backendAt.has(b.ip)) backendAt.set(b.ip, [i, k]);
    if (vip !== undefined && !vipFarm.has(vip)) vipFarm.set(vip, i);

    if (farm.name !== undefined) {
      const other = names.get(farm.name);
      if (other !== undefined) addIssue([i, "name"], `farm name "${farm.name}" is already used by farm ${other}`);
      else names.set(farm.name, i);
    }
    // Only farms on the same VIP can collide: compare within a VIP, not all pairs.
    const mine = items[i];
    if (vip !== undefined && farm.protocol !== undefined && mine !== undefined) {
      const sameVip = byVip.get(vip) ?? [];
      for (const j of sameVip) {
        const prev = farms[j]!;
        if (protocolsOverlap(prev.protocol!, farm.protocol) && portsOverlap(items[j]!, mine)) {
          addIssue([i, "ports"], `${vip} ${farm.protocol}/${farm.ports} overlaps farm "${prev.name}" (${prev.vip} ${prev.protocol}/${prev.ports})`);
        }
      }
      byVip.set(vip, [...sameVip, i]);
    }
    farm.backends.forEach((b, k) => {
      if (b.mark === undefined) return;
      const owner = marks.get(b.mark);
      const key = `${farm.name ?? `#${i}`}#`;
      if (owner !== undefined && !owner.startsWith(key)) {
        addIssue([i, "backends", k, "mark"], `mark ${formatMark(b.mark)} is already used by farm "${owner.slice(0, owner.lastIndexOf("#"))}"`);
      } else marks.set(b.mark, `${key}${k}`);
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
function reportMarkShortage(farms: readonly (Farm | LooseFarm)[], backends: number, explicitMarks: number, addIssue: (path: (string | number)[], message: string) => void): void {
  let free = MARK_CAPACITY - explicitMarks;
  for (const [i, farm] of farms.entries()) {
    for (const [k, b] of farm.backends.entries()) {
      if (b.mark !== undefined || free-- > 0) continue;
      addIssue(
        [i, "backends", k, "mark"],
        `no netfilter mark left for this backend: the farms hold ${backends} backends, natfarm's marks (${MARK_RANGES}) are ${MARK_CAPACITY}`,
      );
      return;
    }
  }
}

export const FarmListSchema = z.array(FarmSchema).superRefine(
  (farms, ctx) => {
    if (!Array.isArray(farms)) return;
    // A farm with errors of its own still takes part: its valid fields can conflict with other farms.
    const loose = farms.map((f) => loosen(f) ?? { backends: [] });
    checkFarmSet(loose, (path, message) => ctx.addIssue({ code: "custom", path, message }));
  },
  { when: EVERY_PASS },
);

/** The declarative file: `{"farms":[...]}`. */
export const FarmFileSchema = z
  .object({ farms: FarmListSchema })
  .strict();

export type FarmFile = z.output<typeof FarmFileSchema>;
