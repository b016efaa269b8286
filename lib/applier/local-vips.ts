import type { Farm } from "../farms/schema.ts";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import { formatTarget, type Target } from "../privileged/target-text.ts";
import { FarmValidationError } from "./errors.ts";

/**
 * A farm whose VIP is one of the balancer's own addresses takes that
 * address's traffic on the farm's ports — with `ports "*"` and protocol
 * `all`, SSH too, and the operator is locked out. A VIP the balancer holds
 * only to answer for it is fine: such addresses carry a label
 * `<interface>:vip…` (`ip addr add VIP/32 dev eth0 label eth0:vip`, as the
 * lab does), and `allowLocalVip: true` on a farm accepts any address.
 */
const VIP_LABEL = /:vip[A-Za-z0-9_.-]*$/;

/**
 * `ip -j addr` output, checked by hand rather than with zod: a re-apply that
 * finds nothing to do loads only what it needs, and zod is a third of that.
 */
function addrList(json: unknown): { ifname: string; addr_info: { family: string; local?: string; label?: string }[] }[] | null {
  if (!Array.isArray(json)) return null;
  const optionalString = (v: unknown) => v === undefined || typeof v === "string";
  for (const link of json) {
    if (typeof link !== "object" || link === null || typeof link.ifname !== "string") return null;
    if (link.addr_info === undefined) link.addr_info = [];
    if (!Array.isArray(link.addr_info)) return null;
    for (const a of link.addr_info) {
      if (typeof a !== "object" || a === null || typeof a.family !== "string" || !optionalString(a.local) || !optionalString(a.label)) return null;
    }
  }
  return json;
}

export interface LocalAddress {
  address: string;
  ifname: string;
  label: string | null;
}

/**
 * A console change asks twice within milliseconds (the service before it
 * writes, the applier before it applies): the real kernel's answer is kept
 * for a second per target.
 */
const recent = new Map<string, { at: number; addresses: Promise<LocalAddress[]> }>();
const RECENT_MS = 1000;

export function readLocalAddresses(target: Target, timeoutMs: number, run: Runner = runPrivileged): Promise<LocalAddress[]> {
  if (run !== runPrivileged) return readAddresses(target, timeoutMs, run);
  const key = formatTarget(target);
  const hit = recent.get(key);
  if (hit && performance.now() - hit.at < RECENT_MS) return hit.addresses;
  const addresses = readAddresses(target, timeoutMs, run);
  recent.set(key, { at: performance.now(), addresses });
  addresses.catch(() => recent.delete(key));
  return addresses;
}

async function readAddresses(target: Target, timeoutMs: number, run: Runner): Promise<LocalAddress[]> {
  const r = await run("ip", ["-j", "-4", "addr", "show"], { target, timeoutMs });
  const links = addrList(JSON.parse(r.stdout || "[]"));
  if (!links) throw new Error(`cannot read the addresses of ${formatTarget(target)}: unexpected output of ip -j addr`);
  return links.flatMap((link) =>
    link.addr_info.filter((a) => a.family === "inet" && a.local).map((a) => ({ address: a.local!, ifname: link.ifname, label: a.label ?? null })),
  );
}

/** The VIPs among `vips` that are addresses of the target's own (not labelled as VIPs). */
export function localVipConflicts(addresses: readonly LocalAddress[], vips: readonly string[]): string[] {
  const own = new Set(addresses.filter((a) => !(a.label && VIP_LABEL.test(a.label))).map((a) => a.address));
  return vips.filter((v) => own.has(v));
}

/** VIPs checkLocalVips looks at: those of live farms that do not allow a local VIP. */
export function checkedVips(farms: readonly { status: string; allowLocalVip?: boolean; vip: string }[]): string[] {
  return [...new Set(farms.filter((f) => f.status === "up" && !f.allowLocalVip).map((f) => f.vip))];
}

/** Refuses (FarmValidationError) live farms whose VIP is one of the target's own addresses; returns warnings. */
export async function checkLocalVips(target: Target, farms: readonly Farm[], timeoutMs: number, run: Runner = runPrivileged): Promise<string[]> {
  const live = farms.filter((f) => f.status === "up" && !f.allowLocalVip);
  if (live.length === 0) return [];
  const own = new Map<string, LocalAddress>();
  for (const a of await readLocalAddresses(target, timeoutMs, run)) if (!(a.label && VIP_LABEL.test(a.label))) own.set(a.address, a);
  const issues: string[] = [];
  for (const f of live) {
    const a = own.get(f.vip);
    if (!a) continue;
    issues.push(
      `farm "${f.name}" › vip: ${f.vip} is an address of the balancer itself (${a.ifname} in ${formatTarget(target)}): ` +
        `a farm on it takes that address's traffic on ports ${f.ports}${f.protocol === "all" || f.ports === "*" ? " — SSH and the console too" : ""}. ` +
        `Use a dedicated VIP address (labelled ${a.ifname}:vip: ip addr add ${f.vip}/32 dev ${a.ifname} label ${a.ifname}:vip) or set "allowLocalVip": true`,
    );
  }
  if (issues.length) throw new FarmValidationError(issues);
  return [];
}
