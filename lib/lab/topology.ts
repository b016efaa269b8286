import fsp from "node:fs/promises";
import { z } from "zod";
import { runPrivileged } from "../privileged/run.ts";
import {
  BackendCountSchema,
  BackendIndexSchema,
  backendIp,
  backendLink,
  backendName,
  LAB,
  labNames,
  LabInputError,
  LabNameSchema,
  labPrefix,
  parseLabInput,
  PortListSchema,
  VipSchema,
} from "./names.ts";
import { ipBatch, killNamespaceProcesses, listNamespaces, namespacesWithPrefix, sysctlIn } from "./netns.ts";
import {
  backendServerRunning,
  processAlive,
  defaultPorts,
  labStateDir,
  readLabState,
  startBackendServer,
  stopBackendServer,
  writeLabState,
} from "./servers.ts";

export interface LabBackend {
  name: string;
  ns: string;
  ip: string;
  /** Only filled by labStatus: whether a server process runs in the backend's namespace. */
  running?: boolean;
}

export interface LabInfo {
  name: string;
  clientNs: string;
  lbNs: string;
  backendNs: string[];
  backends: LabBackend[];
  clientIp: "198.51.100.2";
  lbClientIp: "198.51.100.1";
  lbBackendIp: "203.0.113.1";
  /** The rule engine's target string for the load balancer: "netns:<name>-lb". */
  target: string;
  /** LB interface facing the client (where VIPs live) and the backend-side bridge. */
  lbClientIface: string;
  lbBridge: string;
  /** Ports the backend servers listen on (TCP and UDP). */
  ports: number[];
  /** VIPs currently on the LB's client-side interface. */
  vips: string[];
}

export class LabExistsError extends Error {
  constructor(
    readonly lab: string,
    readonly namespaces: string[],
  ) {
    super(`lab "${lab}" already exists (namespaces: ${namespaces.join(", ")}); run labDown first or pick another name`);
    this.name = "LabExistsError";
  }
}

export class LabNotFoundError extends Error {
  constructor(readonly lab: string) {
    super(`lab "${lab}" is not up (no namespace ${lab}-lb)`);
    this.name = "LabNotFoundError";
  }
}

function buildInfo(name: string, backends: number, ports: number[], vips: string[]): LabInfo {
  const n = labNames(name, backends);
  return {
    name,
    clientNs: n.clientNs,
    lbNs: n.lbNs,
    backendNs: n.backendNs,
    backends: n.backendNs.map((ns, i) => ({ name: backendName(i), ns, ip: backendIp(i) })),
    clientIp: LAB.clientIp,
    lbClientIp: LAB.lbClientIp,
    lbBackendIp: LAB.lbBackendIp,
    target: `netns:${n.lbNs}`,
    lbClientIface: LAB.lbClientIface,
    lbBridge: LAB.lbBridge,
    ports,
    vips,
  };
}

// IPv6 is switched off before any link exists so the lab never emits router
// solicitations, DAD or MLD: the lab only ever speaks the two IPv4 ranges.
const NO_IPV6 = { "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1" };

export const LabUpInput = z.object({
  name: LabNameSchema,
  backends: BackendCountSchema,
  ports: PortListSchema.optional(),
  ownerPid: z.number().int().positive().optional(),
});

/**
 * Creates the lab: client, load balancer and K backend namespaces, wired only
 * to each other, with a server in every backend. Refuses when any namespace of
 * the lab already exists; on a failure midway removes everything it created.
 */
export async function labUp(opts: {
  name: string;
  backends: number;
  ports?: number[];
  /** Process that owns the lab: labSweepOrphans() removes the lab once that process is gone. */
  ownerPid?: number;
}): Promise<LabInfo> {
  const input = parseLabInput("labUp", LabUpInput, opts);
  const ports = input.ports ?? defaultPorts();
  const existing = await namespacesWithPrefix(labPrefix(input.name));
  if (existing.length) throw new LabExistsError(input.name, existing);

  const info = buildInfo(input.name, input.backends, ports, []);
  const all = [info.lbNs, info.clientNs, ...info.backendNs];
  try {
    await ipBatch(all.map((ns) => `netns add ${ns}`));
    await Promise.all(all.map((ns) => sysctlIn(ns, NO_IPV6, true)));

    const { lbClientIface: cli, lbBridge: br, nsIface: eth } = LAB;
    // Each veth is created inside the LB namespace with its peer placed straight
    // into the other namespace: no link ever exists in the root namespace.
    await ipBatch(
      [
        "link set lo up",
        `link add ${cli} type veth peer name ${eth} netns ${info.clientNs}`,
        `addr add ${LAB.lbClientIp}/24 dev ${cli}`,
        `link set ${cli} up`,
        `link add ${br} type bridge`,
        `addr add ${LAB.lbBackendIp}/24 dev ${br}`,
        `link set ${br} up`,
        ...info.backendNs.flatMap((ns, i) => [
          `link add ${backendLink(i)} type veth peer name ${eth} netns ${ns}`,
          `link set ${backendLink(i)} master ${br}`,
          `link set ${backendLink(i)} up`,
        ]),
      ],
      info.lbNs,
    );
    await Promise.all([
      ipBatch(
        ["link set lo up", `addr add ${LAB.clientIp}/24 dev ${eth}`, `link set ${eth} up`, `route add default via ${LAB.lbClientIp}`],
        info.clientNs,
      ),
      ...info.backends.map((b) =>
        ipBatch(["link set lo up", `addr add ${b.ip}/24 dev ${eth}`, `link set ${eth} up`, `route add default via ${LAB.lbBackendIp}`], b.ns),
      ),
      sysctlIn(info.lbNs, { "net.ipv4.ip_forward": "1" }),
    ]);

    await writeLabState({
      name: input.name,
      backends: input.backends,
      ports,
      createdAt: new Date().toISOString(),
      ...(input.ownerPid ? { ownerPid: input.ownerPid } : {}),
    });
    await Promise.all(info.backends.map((_, i) => startBackendServer(input.name, i, ports)));
    return info;
  } catch (err) {
    await labDown({ name: input.name }).catch(() => {});
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`labUp "${input.name}" failed and was rolled back: ${message}`, { cause: err });
  }
}

export const NameOnly = z.object({ name: LabNameSchema });

/**
 * Removes the lab: ends every process in its namespaces, deletes every
 * namespace named "<name>-*" and the state directory. Quiet if already gone.
 */
export async function labDown(opts: { name: string }): Promise<void> {
  const { name } = parseLabInput("labDown", NameOnly, opts);
  const namespaces = await namespacesWithPrefix(labPrefix(name));
  await Promise.all(namespaces.map((ns) => killNamespaceProcesses(ns)));
  if (namespaces.length) {
    // -force: keep deleting the others when one is already gone (a concurrent labDown).
    await runPrivileged("ip", ["-force", "-batch", "-"], {
      input: namespaces.map((ns) => `netns del ${ns}`).join("\n") + "\n",
      allowFailure: true,
    });
  }
  await fsp.rm(labStateDir(name), { recursive: true, force: true }).catch(() => {
    // An unusable state directory must not keep the namespaces alive: they are gone already.
  });
  const left = await namespacesWithPrefix(labPrefix(name));
  if (left.length) throw new Error(`labDown "${name}": namespaces still present after deletion: ${left.join(", ")}`);
}

/** Names of the labs that currently have a load-balancer namespace (or, a cluster lab, a switch namespace). */
export async function labList(): Promise<string[]> {
  return (await listNamespaces())
    .map((ns) => /^([a-z0-9]{1,12})-(?:lb|sw)$/.exec(ns)?.[1])
    .filter((n): n is string => Boolean(n))
    .sort();
}

/**
 * Removes labs whose recorded owner process has exited (test runs killed
 * before their cleanup ran). Labs without an owner (created by hand or by the
 * CLI) are never touched. Returns the names removed.
 */
export async function labSweepOrphans(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await labList()) {
    const owner = (await readLabState(name))?.ownerPid;
    if (owner && !processAlive(owner)) {
      await labDown({ name });
      removed.push(name);
    }
  }
  return removed;
}

async function readVips(lbNs: string): Promise<string[]> {
  const { stdout } = await runPrivileged("ip", ["-n", lbNs, "-j", "-4", "addr", "show", "dev", LAB.lbClientIface]);
  const links = JSON.parse(stdout.trim() || "[]") as { addr_info?: { local?: string }[] }[];
  return links
    .flatMap((l) => l.addr_info ?? [])
    .map((a) => a.local)
    .filter((a): a is string => typeof a === "string" && a !== LAB.lbClientIp);
}

/** The lab as it is now, or null when its load-balancer namespace does not exist. */
export async function labStatus(opts: { name: string }): Promise<LabInfo | null> {
  const { name } = parseLabInput("labStatus", NameOnly, opts);
  const namespaces = await namespacesWithPrefix(labPrefix(name));
  if (!namespaces.includes(`${name}-lb`)) return null;
  const indexes = namespaces
    .map((ns) => new RegExp(`^${name}-b(\\d+)$`).exec(ns)?.[1])
    .filter((i): i is string => i !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const count = indexes.length ? Math.max(...indexes) + 1 : 0;
  const state = await readLabState(name);
  const info = buildInfo(name, count, state?.ports ?? defaultPorts(), await readVips(`${name}-lb`));
  const present = new Set(indexes);
  info.backends = info.backends.filter((_, i) => present.has(i));
  info.backendNs = info.backends.map((b) => b.ns);
  const running = await Promise.all(indexes.map((i) => backendServerRunning(name, i)));
  info.backends.forEach((b, k) => (b.running = running[k]));
  return info;
}

async function requireLab(name: string): Promise<void> {
  if (!(await listNamespaces()).includes(`${name}-lb`)) throw new LabNotFoundError(name);
}

export const VipInput = z.object({ name: LabNameSchema, vip: VipSchema });

/**
 * Adds `vip`/32 to the LB's client-side interface unless it is already there,
 * labelled `<iface>:vip` so the applier knows it for a VIP the balancer answers
 * for, not one of its own addresses.
 */
export async function labEnsureVip(opts: { name: string; vip: string }): Promise<void> {
  const { name, vip } = parseLabInput("labEnsureVip", VipInput, opts);
  await requireLab(name);
  const lbNs = `${name}-lb`;
  if ((await readVips(lbNs)).includes(vip)) return;
  const res = await runPrivileged("ip", ["-n", lbNs, "addr", "add", `${vip}/32`, "dev", LAB.lbClientIface, "label", `${LAB.lbClientIface}:vip`], { allowFailure: true });
  // "File exists": a concurrent caller added it between our read and our add.
  if (res.exitCode !== 0 && !/File exists/i.test(res.stderr)) {
    throw new Error(`labEnsureVip: cannot add ${vip} in ${lbNs}: ${res.stderr.trim()}`);
  }
}

export const ClientAddressesInput = z.object({ name: LabNameSchema, addresses: z.array(VipSchema).min(1).max(254) });

/**
 * Extra source addresses on the client, so that one client namespace can act
 * as many clients (source hashing, persistence). They must not be VIPs.
 */
export async function labEnsureClientAddresses(opts: { name: string; addresses: string[] }): Promise<void> {
  const { name, addresses } = parseLabInput("labEnsureClientAddresses", ClientAddressesInput, opts);
  await requireLab(name);
  const vips = new Set(await readVips(`${name}-lb`));
  const clash = addresses.find((a) => vips.has(a));
  if (clash) throw new LabInputError("labEnsureClientAddresses", [{ field: "addresses", message: `${clash} is a VIP on the load balancer` }]);
  const clientNs = `${name}-client`;
  const { stdout } = await runPrivileged("ip", ["-n", clientNs, "-j", "-4", "addr", "show", "dev", LAB.nsIface]);
  const have = new Set(
    (JSON.parse(stdout.trim() || "[]") as { addr_info?: { local?: string }[] }[]).flatMap((l) => l.addr_info ?? []).map((a) => a.local),
  );
  const missing = addresses.filter((a) => !have.has(a));
  if (missing.length === 0) return;
  await ipBatch(missing.map((a) => `addr add ${a}/24 dev ${LAB.nsIface}`), clientNs);
}

/** Removes `vip` from the LB's client-side interface if present. */
export async function labRemoveVip(opts: { name: string; vip: string }): Promise<void> {
  const { name, vip } = parseLabInput("labRemoveVip", VipInput, opts);
  await requireLab(name);
  const lbNs = `${name}-lb`;
  if (!(await readVips(lbNs)).includes(vip)) return;
  await runPrivileged("ip", ["-n", lbNs, "addr", "del", `${vip}/32`, "dev", LAB.lbClientIface], { allowFailure: true });
}

export const IndexInput = z.object({ name: LabNameSchema, index: BackendIndexSchema });

async function requireBackend(operation: string, name: string, index: number): Promise<void> {
  const namespaces = await listNamespaces();
  if (!namespaces.includes(`${name}-lb`)) throw new LabNotFoundError(name);
  if (!namespaces.includes(`${name}-b${index}`)) {
    throw new Error(`${operation}: lab "${name}" has no backend ${index} (namespace ${name}-b${index} missing)`);
  }
}

/** Stops backend `index`'s server (simulates a dead real server; its address keeps answering ARP/ICMP). */
export async function labStopBackendServer(opts: { name: string; index: number }): Promise<void> {
  const { name, index } = parseLabInput("labStopBackendServer", IndexInput, opts);
  await requireBackend("labStopBackendServer", name, index);
  await stopBackendServer(name, index);
}

/** Starts backend `index`'s server again if it is not running. */
export async function labStartBackendServer(opts: { name: string; index: number }): Promise<void> {
  const { name, index } = parseLabInput("labStartBackendServer", IndexInput, opts);
  await requireBackend("labStartBackendServer", name, index);
  if (await backendServerRunning(name, index)) return;
  const state = await readLabState(name);
  await startBackendServer(name, index, state?.ports ?? defaultPorts());
}
