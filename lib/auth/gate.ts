import type http from "node:http";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { authConfig } from "./config.ts";
import { readCookie, sessionCookieName, sessionUser } from "./sessions.ts";
import { bearer, tokenUser } from "./tokens.ts";

/**
 * The login requirement at the front server (scripts/web-server.ts), before
 * Next.js sees a request: every page, server action (a POST to a page's URL)
 * and API route needs a valid session, except the login and first-setup
 * pages and the build's static files. Pages without one are sent to /login;
 * API routes and POSTs get 401. Roles are checked further in, by each page,
 * action and route (lib/auth/next.ts), which also check the session again.
 *
 * The front also tells Next.js the client's address (x-natfarm-address,
 * after dropping any copy the client sent): Next.js' app router has no
 * other way to learn it, and the login limits count per address.
 */
export const ADDRESS_HEADER = "x-natfarm-address";

const PUBLIC_PAGES = new Set(["/login", "/setup"]);

export function isPublic(method: string, rawUrl: string, dev = false): boolean {
  const q = rawUrl.indexOf("?");
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  // Anything encoded or with dot segments is not public: no second reading of the path can make it so.
  if (path.includes("%") || path.includes("/.") || path.includes("\\") || path.includes("//")) return false;
  if (PUBLIC_PAGES.has(path)) return true; // GET the page, POST its action (the action checks itself)
  if (method !== "GET" && method !== "HEAD") return false;
  if (path.startsWith("/_next/static/") || path === "/favicon.ico") return true;
  if (dev && (path.startsWith("/_next/") || path.startsWith("/__nextjs"))) return true;
  return false;
}

export interface AuthGateOptions {
  db: () => PrismaClient;
  secure: boolean;
  dev?: boolean;
  log?: (message: string) => void;
}

export function createAuthGate(o: AuthGateOptions) {
  const cookie = sessionCookieName(o.secure);
  const config = authConfig();
  return async function gate(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    delete req.headers[ADDRESS_HEADER];
    req.headers[ADDRESS_HEADER] = req.socket.remoteAddress ?? "unknown";
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    if (isPublic(method, url, o.dev)) return true;
    const token = readCookie(typeof req.headers.cookie === "string" ? req.headers.cookie : undefined, cookie);
    // The console's pages poll /api/* every few seconds: those reads do not count as use, or an open tab would never idle out.
    const user = token ? await sessionUser(o.db(), token, { config, touch: !url.startsWith("/api/") }) : null;
    if (user) return true;
    // API routes also take an API token (Authorization: Bearer nft_…); pages and server actions only a session.
    const secret = url.startsWith("/api/") ? bearer(req.headers.authorization) : null;
    if (secret && (await tokenUser(o.db(), secret))) return true;
    res.setHeader("Cache-Control", "no-store");
    if (url.startsWith("/api/")) {
      res.writeHead(401, { "Content-Type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ error: secret ? "the API token is unknown, expired or revoked" : "not signed in: log in at /login, or send Authorization: Bearer <API token>" }) + "\n");
    } else if (method !== "GET" && method !== "HEAD") {
      res.writeHead(401, { "Content-Type": "text/plain; charset=utf-8", Connection: "close" });
      res.end("natfarm: not signed in (or the session ended): log in again at /login; nothing was changed\n");
    } else {
      const safe = url.startsWith("/") && !url.startsWith("//") && url.length < 512 && !url.startsWith("/login");
      res.writeHead(303, { Location: safe && url !== "/" ? `/login?next=${encodeURIComponent(url)}` : "/login" });
      res.end();
    }
    return false;
  };
}
