import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { canonicalHost, isIP, isIPv6, isLoopback, isWildcard, parseAllowedHost, type Scheme } from "./hosts.ts";

/**
 * How the console's web server listens, read from the environment and
 * validated (a mistake stops the start with a message, before anything
 * listens):
 *
 *   NATFARM_HOST           listening address (default 0.0.0.0: every IPv4
 *                          interface, as an appliance's console is reached
 *                          from the operators' desks; 127.0.0.1 when
 *                          NATFARM_TLS=off); :: for every interface
 *   PORT                   default 3000
 *   NATFARM_TLS            on (default) | off. off (plain HTTP) is refused
 *                          unless NATFARM_HOST is a loopback address
 *   NATFARM_TLS_CERT/_KEY  PEM files of a real certificate and its key (both
 *                          or neither); without them a self-signed certificate
 *                          is made in NATFARM_TLS_DIR
 *   NATFARM_TLS_DIR        default: tls/ beside the SQLite database
 *   NATFARM_ALLOWED_HOSTS  comma list of extra names or addresses the console
 *                          answers to (`console.example`, `10.0.0.5`,
 *                          `lb.example:8443`, `[2001:db8::5]`)
 */
export interface WebConfig {
  /** Canonical listening address. */
  host: string;
  port: number;
  scheme: Scheme;
  tls: { kind: "self-signed"; dir: string } | { kind: "files"; cert: string; key: string } | { kind: "off" };
  allowedHosts: string[];
  dev: boolean;
}

export class WebConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid web server configuration:\n  ${issues.join("\n  ")}`);
    this.name = "WebConfigError";
  }
}

const Env = z.object({
  NATFARM_HOST: z.string().optional(),
  PORT: z.string().optional(),
  NATFARM_TLS: z.string().optional(),
  NATFARM_TLS_CERT: z.string().optional(),
  NATFARM_TLS_KEY: z.string().optional(),
  NATFARM_TLS_DIR: z.string().optional(),
  NATFARM_ALLOWED_HOSTS: z.string().optional(),
});

export interface WebConfigContext {
  dev?: boolean;
  /** Where relative certificate paths are resolved (the project root). */
  root: string;
  /** The default NATFARM_TLS_DIR (tls/ beside the database); called only when needed. */
  defaultTlsDir: () => string;
}

export function parseWebConfig(raw: Record<string, string | undefined>, ctx: WebConfigContext): WebConfig {
  const env = Env.parse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v.trim() !== "")));
  const issues: string[] = [];

  const tlsValue = (env.NATFARM_TLS ?? "on").trim().toLowerCase();
  // Logins and tokens cross the network only inside TLS: plain HTTP stays on loopback, so it is its default too.
  let host = tlsValue === "off" ? "127.0.0.1" : "0.0.0.0";
  if (env.NATFARM_HOST !== undefined) {
    const v = env.NATFARM_HOST.trim();
    const c = v.toLowerCase() === "localhost" ? "127.0.0.1" : canonicalHost(v);
    if (!c || !isIP(c) || v.includes("%")) issues.push(`NATFARM_HOST must be an IP address of this machine (or 0.0.0.0 / :: for all), got ${JSON.stringify(v)}`);
    else host = c;
  }

  let port = 3000;
  if (env.PORT !== undefined) {
    const v = env.PORT.trim();
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) issues.push(`PORT must be 1-65535, got ${JSON.stringify(v)}`);
    else port = n;
  }

  if (tlsValue !== "on" && tlsValue !== "off") issues.push(`NATFARM_TLS must be on or off, got ${JSON.stringify(env.NATFARM_TLS)}`);
  const hasCert = env.NATFARM_TLS_CERT !== undefined;
  const hasKey = env.NATFARM_TLS_KEY !== undefined;
  if (hasCert !== hasKey) issues.push("NATFARM_TLS_CERT and NATFARM_TLS_KEY go together: set both (a certificate and its private key) or neither");

  let tls: WebConfig["tls"];
  if (tlsValue === "off") {
    tls = { kind: "off" };
    if (!isLoopback(host)) {
      issues.push(`NATFARM_TLS=off (plain HTTP) is only allowed on a loopback address; NATFARM_HOST is ${host}: remove NATFARM_TLS=off to serve HTTPS`);
    }
    if (hasCert || hasKey) issues.push("NATFARM_TLS=off and NATFARM_TLS_CERT/NATFARM_TLS_KEY contradict each other");
  } else if (hasCert && hasKey) {
    tls = { kind: "files", cert: path.resolve(ctx.root, env.NATFARM_TLS_CERT!.trim()), key: path.resolve(ctx.root, env.NATFARM_TLS_KEY!.trim()) };
  } else {
    tls = { kind: "self-signed", dir: env.NATFARM_TLS_DIR ? path.resolve(ctx.root, env.NATFARM_TLS_DIR.trim()) : ctx.defaultTlsDir() };
  }

  const allowedHosts: string[] = [];
  for (const entry of (env.NATFARM_ALLOWED_HOSTS ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!parseAllowedHost(entry)) issues.push(`NATFARM_ALLOWED_HOSTS: ${JSON.stringify(entry)} is not a host name or address (optionally with :port)`);
    else allowedHosts.push(entry);
  }

  if (issues.length) throw new WebConfigError(issues);
  return { host, port, scheme: tls.kind === "off" ? "http" : "https", tls, allowedHosts, dev: !!ctx.dev };
}

/** What this machine calls itself: its host name and the addresses of its interfaces (link-local ones left out). */
export interface SystemNames {
  hostname: string;
  interfaceAddresses: string[];
}

export function systemNames(): SystemNames {
  const addrs: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      const c = canonicalHost(a.address);
      if (!c || (a.family === "IPv6" && (a.scopeid || /^fe[89ab]/.test(c)))) continue;
      if (!addrs.includes(c)) addrs.push(c);
    }
  }
  return { hostname: os.hostname().toLowerCase(), interfaceAddresses: addrs };
}

/**
 * The names a self-signed certificate must hold (`required`: a certificate
 * lacking one is made again) and may hold (`extra`: the interface addresses
 * when listening on every interface, taken when it is made).
 */
export function certificateNames(c: WebConfig, sys: SystemNames): { required: string[]; extra: string[] } {
  const required: string[] = [];
  const add = (list: string[], raw: string) => {
    const h = canonicalHost(raw);
    if (h && !required.includes(h) && !list.includes(h)) list.push(h);
  };
  for (const n of ["localhost", "127.0.0.1", "::1", sys.hostname]) add(required, n);
  if (!isWildcard(c.host)) add(required, c.host);
  for (const e of c.allowedHosts) {
    const hp = parseAllowedHost(e);
    if (hp) add(required, hp.host);
  }
  const extra: string[] = [];
  if (isWildcard(c.host)) for (const a of sys.interfaceAddresses) add(extra, a);
  return { required, extra };
}

/** The address to show in a URL for a listening address: a wildcard is shown as the host name. */
export function displayHost(c: WebConfig, sys: Pick<SystemNames, "hostname">): string {
  if (isWildcard(c.host)) return sys.hostname || "localhost";
  if (c.host === "127.0.0.1" || c.host === "::1") return "localhost";
  return isIPv6(c.host) ? `[${c.host}]` : c.host;
}

/** `https://localhost:3000` and the like: where an operator points a browser. */
export function consoleUrl(c: WebConfig, sys: Pick<SystemNames, "hostname">): string {
  return `${c.scheme}://${displayHost(c, sys)}:${c.port}`;
}
