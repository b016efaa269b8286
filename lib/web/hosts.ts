import ipaddr from "ipaddr.js";

/**
 * Which names and addresses are the console's own, and the checks made on
 * every request before Next.js sees it (pure: no sockets, no environment).
 *
 * - Host: a request whose Host header is not one of the console's names is
 *   refused. A page on evil.example whose DNS name is re-pointed to
 *   127.0.0.1 (DNS rebinding) still sends `Host: evil.example`, so it never
 *   reaches the console even though it connects to the right socket.
 * - Origin: a state-changing request (any method but GET/HEAD/OPTIONS) must
 *   come from the console's own origin: `Origin` equal to the scheme, host
 *   and port the request was sent to (or, when a browser sends no Origin,
 *   `Sec-Fetch-Site: same-origin`). A form or fetch from another site, or a
 *   client that says nothing, is refused.
 *
 * Names are compared canonically: lower case, no trailing dot, IPv4 in
 * dotted decimal, IPv6 compressed and without brackets.
 */

export type Scheme = "https" | "http";

export interface HostPort {
  /** Canonical host: a lower-case name, a dotted IPv4 address or a compressed IPv6 address (no brackets). */
  host: string;
  /** The explicit port, or null when the header carries none. */
  port: number | null;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** A DNS name (or a single label such as a host name): letters, digits, hyphens, underscores, dots. */
const NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export const isIPv4 = (s: string) => IPV4.test(s);
export const isIPv6 = (s: string) => s.includes(":") && ipaddr.IPv6.isValid(s) && !s.includes("%");
export const isIP = (s: string) => isIPv4(s) || isIPv6(s);

/** The canonical form of a host name or address, or null when it is neither. */
export function canonicalHost(raw: string): string | null {
  let h = raw.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (!h) return null;
  if (isIPv4(h)) return h;
  if (h.includes(":")) return isIPv6(h) ? ipaddr.IPv6.parse(h).toString() : null;
  if (h.endsWith(".")) h = h.slice(0, -1);
  // All-numeric dotted names ("127.1", "2130706433") are IPv4 in other spellings: not a name.
  if (/^[\d.]+$/.test(h) || /^0x/i.test(h)) return null;
  return NAME.test(h) ? h : null;
}

/** `host[:port]` as it appears in a URL or a Host header: IPv6 in brackets. */
export function formatHost(host: string, port?: number | null): string {
  const h = isIPv6(host) ? `[${host}]` : host;
  return port ? `${h}:${port}` : h;
}

function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/**
 * A Host header (`name`, `name:port`, `1.2.3.4:port`, `[::1]:port`), or null
 * when malformed (empty, whitespace, user info, a bare IPv6 address, a bad
 * port).
 */
export function parseHostHeader(value: string | undefined | null): HostPort | null {
  if (typeof value !== "string" || value === "" || value.length > 300 || /[\s@/\\?#]/.test(value)) return null;
  let hostPart: string;
  let portPart: string | null = null;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end < 0) return null;
    hostPart = value.slice(0, end + 1);
    const rest = value.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portPart = rest.slice(1);
    }
  } else {
    const colons = value.split(":").length - 1;
    if (colons > 1) return null; // an IPv6 address must be in brackets
    const i = value.indexOf(":");
    hostPart = i < 0 ? value : value.slice(0, i);
    if (i >= 0) portPart = value.slice(i + 1);
  }
  const host = canonicalHost(hostPart);
  if (!host) return null;
  if (hostPart.startsWith("[") !== isIPv6(host)) return null;
  let port: number | null = null;
  if (portPart !== null) {
    port = parsePort(portPart);
    if (port === null) return null;
  }
  return { host, port };
}

/** An Origin header (`https://host[:port]`), or null when absent, "null" or malformed. */
export function parseOrigin(value: string | undefined | null): { scheme: Scheme; host: string; port: number } | null {
  if (typeof value !== "string") return null;
  const m = /^(https?):\/\/([^/?#]+)$/i.exec(value.trim());
  if (!m) return null;
  const scheme = m[1]!.toLowerCase() as Scheme;
  const hp = parseHostHeader(m[2]!);
  if (!hp) return null;
  return { scheme, host: hp.host, port: hp.port ?? defaultPort(scheme) };
}

export const defaultPort = (scheme: Scheme) => (scheme === "https" ? 443 : 80);

export const isLoopback = (host: string): boolean => {
  const h = canonicalHost(host);
  if (h === "localhost") return true;
  if (!h || !isIP(h)) return false;
  const a = ipaddr.parse(h);
  if (a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress()) return (a as ipaddr.IPv6).toIPv4Address().range() === "loopback";
  return a.range() === "loopback";
};

export const isWildcard = (host: string): boolean => {
  const h = canonicalHost(host);
  return h === "0.0.0.0" || h === "::";
};

/** An entry of NATFARM_ALLOWED_HOSTS: `name`, `name:port`, an address, `[v6]:port` (a bare IPv6 address is accepted too). */
export function parseAllowedHost(entry: string): HostPort | null {
  const e = entry.trim();
  if (!e) return null;
  if (!e.startsWith("[") && isIPv6(e.toLowerCase())) return { host: canonicalHost(e)!, port: null };
  return parseHostHeader(e);
}

export interface HostPolicy {
  scheme: Scheme;
  /** The port the console listens on. */
  port: number;
  /** Hosts accepted with no port, or with the listening port. */
  names: ReadonlySet<string>;
  /** Extra `host:port` pairs (NATFARM_ALLOWED_HOSTS entries with a port). */
  hostPorts: ReadonlySet<string>;
}

export interface HostPolicyInput {
  scheme: Scheme;
  listenHost: string;
  port: number;
  /** This machine's host name (os.hostname()). */
  hostname: string;
  /** Addresses of the local interfaces: used when listening on 0.0.0.0 or ::. */
  interfaceAddresses: readonly string[];
  /** NATFARM_ALLOWED_HOSTS, already split. */
  allowed: readonly string[];
}

/** The console's own names: loopback, the host name, the listening address (every interface's when it is a wildcard), the configured extras. */
export function buildHostPolicy(i: HostPolicyInput): HostPolicy {
  const names = new Set<string>(["localhost", "127.0.0.1", "::1"]);
  const hostPorts = new Set<string>();
  const add = (raw: string) => {
    const h = canonicalHost(raw);
    if (h) names.add(h);
  };
  add(i.hostname);
  if (isWildcard(i.listenHost)) for (const a of i.interfaceAddresses) add(a);
  else add(i.listenHost);
  for (const entry of i.allowed) {
    const hp = parseAllowedHost(entry);
    if (!hp) continue;
    if (hp.port === null) names.add(hp.host);
    else hostPorts.add(formatHost(hp.host, hp.port));
  }
  return { scheme: i.scheme, port: i.port, names, hostPorts };
}

export type Verdict = { ok: true } | { ok: false; status: number; message: string };

const refuse = (status: number, message: string): Verdict => ({ ok: false, status, message });

/** The Host check (DNS rebinding defence): 421 for a name that is not the console's, 400 for a malformed header. */
export function checkHost(policy: HostPolicy, header: string | undefined): Verdict {
  if (header === undefined || header === "") return refuse(400, "natfarm: the request has no Host header\n");
  const hp = parseHostHeader(header);
  if (!hp) return refuse(400, "natfarm: malformed Host header\n");
  if (policy.names.has(hp.host) && (hp.port === null || hp.port === policy.port)) return { ok: true };
  if (hp.port !== null && policy.hostPorts.has(formatHost(hp.host, hp.port))) return { ok: true };
  return refuse(421, `natfarm: ${JSON.stringify(header.slice(0, 100))} is not a name of this console (add it to NATFARM_ALLOWED_HOSTS if it should be)\n`);
}

/** Methods that change nothing: they need no Origin. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

export interface OriginInput {
  method: string;
  host: string | undefined;
  origin: string | undefined;
  secFetchSite: string | undefined;
}

/**
 * The Origin check (CSRF defence) for a request whose Host already passed:
 * a state-changing request must name, in Origin, the very scheme, host and
 * port it was sent to; with no Origin, only a browser's
 * `Sec-Fetch-Site: same-origin` is accepted.
 */
export function checkOrigin(policy: HostPolicy, r: OriginInput): Verdict {
  if (SAFE_METHODS.has(r.method.toUpperCase())) return { ok: true };
  const target = parseHostHeader(r.host);
  if (!target) return refuse(400, "natfarm: malformed Host header\n");
  if (r.origin === undefined) {
    if (r.secFetchSite?.trim().toLowerCase() === "same-origin") return { ok: true };
    return refuse(403, "natfarm: a request that changes something must carry the console's own Origin\n");
  }
  const o = parseOrigin(r.origin);
  if (!o) return refuse(403, `natfarm: origin ${JSON.stringify(r.origin.slice(0, 100))} is not this console\n`);
  const targetPort = target.port ?? defaultPort(policy.scheme);
  if (o.scheme !== policy.scheme || o.host !== target.host || o.port !== targetPort) {
    return refuse(403, `natfarm: origin ${JSON.stringify(r.origin.slice(0, 100))} is not this console\n`);
  }
  return { ok: true };
}
