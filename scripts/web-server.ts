/**
 * The console's web server: Next.js (production build, or `next dev` with
 * --dev) behind natfarm's own HTTPS server.
 *
 *   node --import tsx scripts/web-server.ts [--dev]
 *
 * `next start` cannot serve HTTPS, and it would hand every request to the
 * app as it came. This server:
 *   - serves HTTPS on NATFARM_HOST:PORT (default 127.0.0.1:3000) with the
 *     operator's certificate (NATFARM_TLS_CERT / NATFARM_TLS_KEY) or a
 *     self-signed one made at the first start beside the database
 *     (lib/web/tls.ts); plain HTTP only with NATFARM_TLS=off on a loopback
 *     address;
 *   - checks every request before Next.js sees it (lib/web/server.ts): the
 *     Host must be one of the console's names (DNS rebinding), a
 *     state-changing request must carry the console's own Origin (CSRF), and
 *     every answer carries the security headers (lib/web/headers.ts).
 * The supervisor (`npm start`, lib/supervisor/console.ts) runs it as its
 * "web" child; the browser tests and the console bench start it directly.
 * Configuration: lib/web/config.ts. SIGTERM / SIGINT: stop listening, let
 * open requests finish (3 s at most), exit.
 */
import { EventEmitter } from "node:events";
import type http from "node:http";
import type { Duplex } from "node:stream";
import { projectRoot } from "../lib/db/env.ts";
import { systemNames, WebConfigError, type WebConfig } from "../lib/web/config.ts";
import { formatHost, isWildcard } from "../lib/web/hosts.ts";
import { prepareWeb, webConfigFromEnv, type PreparedWeb } from "../lib/web/prepare.ts";
import { createWebServer } from "../lib/web/server.ts";
import { createAuthGate } from "../lib/auth/gate.ts";
import { authConfig, AuthConfigError } from "../lib/auth/config.ts";
import { getPrisma } from "../lib/db/client.ts";
import { migrate } from "../lib/db/migrate.ts";
import { DatabaseUnreachableError } from "../lib/db/errors.ts";
import { CertificateError } from "../lib/web/tls.ts";

const dev = process.argv.includes("--dev");
// Next.js reads these when it loads: set before it is imported.
(process.env as Record<string, string>).NODE_ENV = dev ? "development" : "production";
process.env.NEXT_TELEMETRY_DISABLED ??= "1";

const log = (s: string) => process.stdout.write(`natfarm web: ${s}\n`);

function fail(message: string): never {
  process.stderr.write(`natfarm web: ${message}\n`);
  process.exit(1);
}

async function main() {
  const root = projectRoot();
  let config: WebConfig;
  try {
    config = webConfigFromEnv(process.env, { root, dev });
  } catch (e) {
    fail(e instanceof WebConfigError ? e.message : String(e));
  }
  let web: PreparedWeb;
  try {
    web = await prepareWeb(config);
  } catch (e) {
    fail(e instanceof CertificateError ? e.message : `TLS certificate: ${e instanceof Error ? e.message : String(e)}`);
  }
  const cert = web.cert;
  try {
    authConfig();
  } catch (e) {
    fail(e instanceof AuthConfigError ? e.message : String(e));
  }
  // The login gate reads sessions before Next.js runs: the tables must be there (a no-op when npm start migrated).
  try {
    await migrate();
  } catch (e) {
    fail(e instanceof DatabaseUnreachableError ? e.message : String(e));
  }
  // Next.js runs in this process: the session cookie's name and Secure flag follow the scheme served.
  process.env.NATFARM_WEB_SCHEME = config.scheme;

  const { default: next } = await import("next");
  // Next.js hooks its WebSocket handler (next dev's HMR) onto the server it is given, or else onto the
  // first request's server, where it would skip the checks: it gets this stand-in, and only upgrades
  // that passed the guard are forwarded to it.
  const upgrades = new EventEmitter();
  const app = next({
    dev,
    dir: root,
    hostname: isWildcard(config.host) ? "localhost" : config.host,
    port: config.port,
    httpServer: upgrades as unknown as http.Server,
  });
  await app.prepare();
  const handle = app.getRequestHandler();

  const { server } = createWebServer({
    config,
    system: systemNames,
    tls: cert,
    log,
    // Every page, server action and API route needs a session (lib/auth/gate.ts); Next.js checks roles.
    gate: createAuthGate({ db: () => getPrisma(), secure: config.scheme === "https", dev, log }),
    handler: (req, res) => handle(req, res),
    upgrade: dev ? (req: http.IncomingMessage, socket: Duplex, head: Buffer) => upgrades.emit("upgrade", req, socket, head) : undefined,
  });

  server.on("error", (e: NodeJS.ErrnoException) => {
    fail(e.code === "EADDRINUSE" ? `${formatHost(config.host, config.port)} is already in use` : `cannot listen on ${formatHost(config.host, config.port)}: ${e.message}`);
  });
  server.listen(config.port, config.host, () => {
    log(`${web.summary}; ${dev ? "next dev" : "production build"}, pid ${process.pid}`);
  });

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    server.close();
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), 3000);
    force.unref();
    void Promise.allSettled([app.close(), new Promise((r) => server.once("close", r))]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => stop(sig));
}

main().catch((e) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
