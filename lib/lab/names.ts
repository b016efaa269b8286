import { randomInt } from "node:crypto";
import ipaddr from "ipaddr.js";
import { z } from "zod";

/**
 * Fixed facts of the lab topology (DESIGN.md, "The lab"). Only documentation
 * ranges are used so that nothing the lab does can be confused with, or reach,
 * a real network.
 */
export const LAB = {
  clientNet: "198.51.100.0/24",
  backendNet: "203.0.113.0/24",
  clientIp: "198.51.100.2",
  lbClientIp: "198.51.100.1",
  lbBackendIp: "203.0.113.1",
  firstBackendHost: 10,
  maxBackends: 32,
  /** Interface names inside the namespaces (each namespace has its own name space for links). */
  lbClientIface: "cli0",
  lbBridge: "br0",
  nsIface: "eth0",
  defaultPorts: [80, 443, 8080] as number[],
} as const;

const LAB_NAME = /^[a-z0-9]{1,12}$/;
const RANDOM_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export interface LabNames {
  name: string;
  clientNs: string;
  lbNs: string;
  backendNs: string[];
}

export function labNames(name: string, backends: number): LabNames {
  return {
    name,
    clientNs: `${name}-client`,
    lbNs: `${name}-lb`,
    backendNs: Array.from({ length: backends }, (_, i) => backendNsName(name, i)),
  };
}

export const backendNsName = (name: string, index: number) => `${name}-b${index}`;
export const backendName = (index: number) => `b${index}`;
export const backendIp = (index: number) => `203.0.113.${LAB.firstBackendHost + index}`;
export const backendLink = (index: number) => `vb${index}`;

/**
 * Lab names carry no "-", so "<name>-" is a prefix that belongs to exactly one
 * lab: "t1" can never delete "t12"'s namespaces.
 */
export const labPrefix = (name: string) => `${name}-`;

/** A fresh lab name: prefix + 6 random [a-z0-9] (36^6 ≈ 2e9 values). */
export function uniqueLabName(prefix = "t"): string {
  if (!/^[a-z0-9]{1,6}$/.test(prefix)) {
    throw new LabInputError("uniqueLabName", [{ field: "prefix", message: `must be 1-6 characters [a-z0-9], got ${JSON.stringify(prefix)}` }]);
  }
  let suffix = "";
  for (let i = 0; i < 6; i++) suffix += RANDOM_ALPHABET[randomInt(RANDOM_ALPHABET.length)];
  return prefix + suffix;
}

export class LabInputError extends Error {
  constructor(
    readonly operation: string,
    readonly issues: { field: string; message: string }[],
  ) {
    super(`${operation}: invalid input: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`);
    this.name = "LabInputError";
  }
}

export function parseLabInput<S extends z.ZodType>(operation: string, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new LabInputError(
    operation,
    result.error.issues.map((issue) => ({
      field: issue.path.length ? issue.path.join(".") : "(input)",
      message: issue.message,
    })),
  );
}

const got = (input: unknown) => `got ${JSON.stringify(input)}`;

export function inCidr(value: string, cidr: string): boolean {
  if (!ipaddr.IPv4.isValidFourPartDecimal(value)) return false;
  const [net, bits] = ipaddr.IPv4.parseCIDR(cidr);
  return ipaddr.IPv4.parse(value).match(net, bits);
}

/** Not the network or broadcast address of its /24. */
function isHostOf24(value: string): boolean {
  const last = ipaddr.IPv4.parse(value).octets[3]!;
  return last !== 0 && last !== 255;
}

export const LabNameSchema = z
  .string({ error: (iss) => `must be a string, ${got(iss.input)}` })
  .refine((v) => LAB_NAME.test(v), { error: (iss) => `must be 1-12 characters [a-z0-9], ${got(iss.input)}` });

export const PortSchema = z
  .number({ error: (iss) => `must be a number, ${got(iss.input)}` })
  .int({ error: (iss) => `must be an integer, ${got(iss.input)}` })
  .min(1, { error: (iss) => `must be 1..65535, ${got(iss.input)}` })
  .max(65535, { error: (iss) => `must be 1..65535, ${got(iss.input)}` });

const intRange = (min: number, max: number) =>
  z
    .number({ error: (iss) => `must be a number, ${got(iss.input)}` })
    .int({ error: (iss) => `must be an integer, ${got(iss.input)}` })
    .min(min, { error: (iss) => `must be ${min}..${max}, ${got(iss.input)}` })
    .max(max, { error: (iss) => `must be ${min}..${max}, ${got(iss.input)}` });

export const BackendCountSchema = intRange(1, LAB.maxBackends);
export const BackendIndexSchema = intRange(0, LAB.maxBackends - 1);
export const ConnectionsSchema = intRange(1, 100_000);
export const ConcurrencySchema = intRange(1, 1024);
export const TimeoutMsSchema = intRange(50, 60_000);
export const DurationMsSchema = intRange(1, 3_600_000);

export const PortListSchema = z
  .array(PortSchema, { error: (iss) => `must be an array of ports, ${got(iss.input)}` })
  .min(1, { error: "must list at least one port" })
  .max(32, { error: "at most 32 ports" })
  .refine((ports) => new Set(ports).size === ports.length, { error: "ports must not repeat" });

const ipv4 = z
  .string({ error: (iss) => `must be a string, ${got(iss.input)}` })
  .refine((v) => ipaddr.IPv4.isValidFourPartDecimal(v), { error: (iss) => `must be an IPv4 address, ${got(iss.input)}` });

const RESERVED_CLIENT_SIDE = new Set<string>([LAB.clientIp, LAB.lbClientIp]);

/** A VIP: a host address of the client-side net that the client or LB does not already own. */
export const VipSchema = ipv4.superRefine((v, ctx) => {
  if (!inCidr(v, LAB.clientNet) || !isHostOf24(v)) {
    ctx.addIssue({ code: "custom", message: `must be a host address inside ${LAB.clientNet}, got ${JSON.stringify(v)}` });
  } else if (RESERVED_CLIENT_SIDE.has(v)) {
    ctx.addIssue({ code: "custom", message: `${v} is the ${v === LAB.clientIp ? "client's" : "LB's"} own address, not usable as a VIP` });
  }
});

/** Where the client may send traffic: a VIP, or a backend address directly (routed by the LB). */
export const TrafficDestinationSchema = ipv4.superRefine((v, ctx) => {
  const ok = (inCidr(v, LAB.clientNet) || inCidr(v, LAB.backendNet)) && isHostOf24(v);
  if (!ok) {
    ctx.addIssue({
      code: "custom",
      message: `must be a host address inside ${LAB.clientNet} (a VIP) or ${LAB.backendNet} (a backend), got ${JSON.stringify(v)}`,
    });
  }
});

export const ProtocolSchema = z.enum(["tcp", "udp"], { error: (iss) => `must be "tcp" or "udp", ${got(iss.input)}` });
