import type http from "node:http";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { authConfig } from "./config.ts";
import { audit } from "./audit.ts";
import { refusalMessage } from "./roles.ts";
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

/** Pages only administrators may open: anyone else gets 403 here (the page checks again, and so does every action). */
const ADMIN_PAGES: { path: string; what: string }[] = [{ path: "/users", what: "managing users" }];

export function adminPage(rawUrl: string): { path: string; what: string } | null {
  const q = rawUrl.search(/[?#]/);
  const path = (q >= 0 ? rawUrl.slice(0, q) : rawUrl).replace(/\/+$/, "");
  return ADMIN_PAGES.find((p) => path === p.path || path.startsWith(`${p.path}/`)) ?? null;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A small page of its own: the refusal must not depend on Next.js rendering anything for a role that may not see it. */
export function forbiddenPage(message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>403 · natfarm</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#111}main{max-width:32rem;margin:4rem auto;padding:1.5rem;background:#fff;border:1px solid #d5d9e0;border-radius:.5rem}a{color:#0b57d0}@media (prefers-color-scheme:dark){body{background:#0f1115;color:#e8eaed}main{background:#171a21;border-color:#2d323c}a{color:#8ab4f8}}</style></head>
<body><main><h1>403: for administrators</h1><p>${escapeHtml(message)}</p><p><a href="/">Back to the farms</a></p></main></body></html>\n`;
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
    if (user) {
      const admin = method === "GET" || method === "HEAD" ? adminPage(url) : null;
      if (!admin || user.role === "admin") return true;
      // A POST (a server action) goes on: the action refuses and records it itself.
      const message = refusalMessage(user.role, "administer", `opening ${admin.path} (${admin.what})`);
      await audit(o.db(), { actor: user.name, via: "session", address: req.headers[ADDRESS_HEADER] as string, action: "refused", result: "refused", detail: message });
      res.writeHead(403, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
      res.end(method === "HEAD" ? undefined : forbiddenPage(message.replace(" Nothing was changed.", "")));
      return false;
    }
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
