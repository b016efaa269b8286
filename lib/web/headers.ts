/**
 * Security headers the console's server sets on every response (pages, API
 * routes, static files and its own refusals), before Next.js adds its own.
 *
 * The Content-Security-Policy allows inline scripts: Next.js' App Router
 * inlines its bootstrap and flight data (nonces would make every page
 * dynamic). What matters most for a console that changes a kernel's rules
 * holds without nonces: no framing (clickjacking), no plugins, no <base>
 * hijack, forms post only to the console, and nothing is fetched from or sent
 * to any other origin.
 */
export interface HeaderOptions {
  /** Served over TLS: adds Strict-Transport-Security and upgrade-insecure-requests. */
  tls: boolean;
  /** `next dev`: React's development build needs eval, and the HMR socket needs ws(s). */
  dev: boolean;
}

export function contentSecurityPolicy(o: HeaderOptions): string {
  const directives: [string, ...string[]][] = [
    ["default-src", "'self'"],
    ["script-src", "'self'", "'unsafe-inline'", ...(o.dev ? ["'unsafe-eval'"] : [])],
    ["style-src", "'self'", "'unsafe-inline'"],
    ["img-src", "'self'", "data:", "blob:"],
    ["font-src", "'self'", "data:"],
    ["connect-src", "'self'", ...(o.dev ? (o.tls ? ["wss:"] : ["ws:"]) : [])],
    ["worker-src", "'self'", "blob:"],
    ["manifest-src", "'self'"],
    ["media-src", "'self'"],
    ["object-src", "'none'"],
    ["base-uri", "'self'"],
    ["form-action", "'self'"],
    ["frame-ancestors", "'none'"],
    ["frame-src", "'none'"],
  ];
  const text = directives.map((d) => d.join(" "));
  if (o.tls) text.push("upgrade-insecure-requests");
  return text.join("; ");
}

/** Name → value, in the order they are set. */
export function securityHeaders(o: HeaderOptions): Record<string, string> {
  return {
    "Content-Security-Policy": contentSecurityPolicy(o),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    // Browsers ignore it for IP addresses and for a certificate they had to be told to accept;
    // for a real certificate on a name it keeps the console on https.
    ...(o.tls ? { "Strict-Transport-Security": "max-age=31536000" } : {}),
  };
}
