import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { WebConfig, SystemNames } from "./config.ts";
import { securityHeaders } from "./headers.ts";
import { buildHostPolicy, checkHost, checkOrigin, isWildcard, type HostPolicy, type Verdict } from "./hosts.ts";

/**
 * The console's HTTP(S) server without Next.js in it: every request goes
 * through the guard first (security headers set, Host checked, Origin
 * checked for state-changing methods, proxy headers nobody vouches for
 * dropped), and only then to `handler` (Next.js' request handler in
 * scripts/web-server.ts, a stub in tests). A refused request gets a short
 * plain-text answer and never reaches the handler: its body is not read.
 */
export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => unknown;

export interface GuardOptions {
  config: WebConfig;
  /** The machine's names; called again (at most every 5 s) when a Host is not known, for addresses that came up since. */
  system: () => SystemNames;
  log?: (message: string) => void;
}

/** Headers only a reverse proxy may set: the console is not behind one, so a client's are dropped before Next.js trusts them. */
const PROXY_HEADERS = ["x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-for", "forwarded", "x-real-ip"];

export interface Guard {
  policy(): HostPolicy;
  /** The verdict for a request (host, then origin), refreshing the machine's names once when the host is unknown. */
  verdict(req: Pick<http.IncomingMessage, "method" | "url" | "headers">): Verdict;
  /** Sets the security headers; answers a refused request itself and returns false, or returns true for the handler to go on. */
  admit(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

export function createGuard(o: GuardOptions): Guard {
  const build = () => {
    const sys = o.system();
    return buildHostPolicy({
      scheme: o.config.scheme,
      listenHost: o.config.host,
      port: o.config.port,
      hostname: sys.hostname,
      interfaceAddresses: sys.interfaceAddresses,
      allowed: o.config.allowedHosts,
    });
  };
  let policy = build();
  let builtAt = Date.now();
  const headers = Object.entries(securityHeaders({ tls: o.config.scheme === "https", dev: o.config.dev }));
  // At most 20 refusal lines per 10 s: a scan must not flood the log.
  let window = 0;
  let logged = 0;
  let suppressed = 0;
  const logRefusal = (line: string) => {
    const now = Date.now();
    if (now - window > 10_000) {
      if (suppressed) o.log?.(`(${suppressed} more refused requests not logged)`);
      window = now;
      logged = 0;
      suppressed = 0;
    }
    if (logged++ < 20) o.log?.(line);
    else suppressed++;
  };

  const verdict: Guard["verdict"] = (req) => {
    const url = req.url ?? "";
    if (!url.startsWith("/") && !(url === "*" && req.method === "OPTIONS")) return { ok: false, status: 400, message: "natfarm: the request target must be a path\n" };
    const host = headerValue(req.headers.host);
    let v = checkHost(policy, host);
    if (!v.ok && v.status === 421 && isWildcard(o.config.host) && Date.now() - builtAt > 5000) {
      policy = build();
      builtAt = Date.now();
      v = checkHost(policy, host);
    }
    if (!v.ok) return v;
    if (bearerOnly(req)) return { ok: true };
    return checkOrigin(policy, {
      method: req.method ?? "GET",
      host,
      origin: headerValue(req.headers.origin),
      secFetchSite: headerValue(req.headers["sec-fetch-site"]),
    });
  };

  return {
    policy: () => policy,
    verdict,
    admit(req, res) {
      for (const [k, v] of headers) res.setHeader(k, v);
      const v = verdict(req);
      if (!v.ok) {
        logRefusal(`refused ${req.method} ${String(req.url).slice(0, 80)} from ${req.socket.remoteAddress}: ${v.status} ${v.message.trim().replace(/^natfarm: /, "")}`);
        res.writeHead(v.status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", Connection: "close" });
        res.end(v.message);
        return false;
      }
      for (const h of PROXY_HEADERS) delete req.headers[h];
      return true;
    },
  };
}

/**
 * The one exemption from the Origin check: a REST API request (/api/v1/…)
 * authenticated by `Authorization: Bearer` and carrying no Cookie header at
 * all. CSRF works by the browser attaching the victim's cookie to a request
 * another site makes; a browser never attaches an Authorization header on
 * its own, and without a cookie the request has no session to ride on (the
 * gate then accepts the token or answers 401). Scripts and automation send
 * no Origin, so they would otherwise be refused. Any Cookie header, any
 * other path or any other Authorization scheme keeps the check.
 */
export function bearerOnly(req: Pick<http.IncomingMessage, "url" | "headers">): boolean {
  const url = req.url ?? "";
  if (!url.startsWith("/api/v1/")) return false;
  if (req.headers.cookie !== undefined) return false;
  const auth = req.headers.authorization;
  return typeof auth === "string" && /^Bearer\s+\S+$/i.test(auth.trim());
}

/** A header sent twice arrives as a list (or joined): either way it is not one value. */
function headerValue(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) return v.length === 1 ? v[0] : "\u0000";
  if (typeof v === "string" && v.includes(",")) return "\u0000";
  return v;
}

export interface WebServerOptions extends GuardOptions {
  /** PEM certificate and key; required unless config.scheme is http. */
  tls: { cert: string; key: string } | null;
  handler: RequestHandler;
  /**
   * Runs after the guard admitted a request and before the handler: answers
   * the request itself and resolves false (the login requirement,
   * lib/auth/gate.ts), or resolves true for the handler to go on.
   */
  gate?: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;
  /** WebSocket upgrades (next dev's HMR) that passed the guard; without it every upgrade is refused. */
  upgrade?: UpgradeHandler;
}

export function createWebServer(o: WebServerOptions): { server: http.Server; guard: Guard } {
  const guard = createGuard(o);
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!guard.admit(req, res)) return;
    Promise.resolve()
      .then(async () => {
        if (o.gate && !(await o.gate(req, res))) return;
        return o.handler(req, res);
      })
      .catch((e: unknown) => {
        o.log?.(`request ${req.method} ${req.url} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        if (!res.headersSent) {
          res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
          res.end("natfarm: internal server error\n");
        } else res.destroy();
      });
  };
  let server: http.Server;
  if (o.config.scheme === "https") {
    if (!o.tls) throw new Error("an HTTPS server needs a certificate");
    server = https.createServer({ cert: o.tls.cert, key: o.tls.key, minVersion: "TLSv1.2" }, onRequest);
  } else {
    server = http.createServer(onRequest);
  }
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const v = guard.verdict(req);
    // A WebSocket is opened with GET: its Origin is checked as if it changed something (cross-site WebSocket hijacking).
    const origin = v.ok ? checkOrigin(guard.policy(), { method: "POST", host: headerValue(req.headers.host), origin: headerValue(req.headers.origin), secFetchSite: undefined }) : v;
    if (!origin.ok || !o.upgrade) {
      const status = origin.ok ? 404 : origin.status;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${origin.ok ? "natfarm: no WebSocket here\n" : origin.message}`);
      return;
    }
    for (const h of PROXY_HEADERS) delete req.headers[h];
    o.upgrade(req, socket, head);
  });
  return { server, guard };
}
