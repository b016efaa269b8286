import { describe, expect, it } from "vitest";
import { certificateNames, consoleUrl, parseWebConfig, WebConfigError } from "../../lib/web/config.ts";
import { contentSecurityPolicy, securityHeaders } from "../../lib/web/headers.ts";
import { parseIdFile } from "../../lib/web/users.ts";

const ctx = { root: "/srv/natfarm", defaultTlsDir: () => "/srv/natfarm/data/tls" };
const parse = (env: Record<string, string>) => parseWebConfig(env, ctx);
const issues = (env: Record<string, string>) => {
  try {
    parse(env);
  } catch (e) {
    if (e instanceof WebConfigError) return e.issues.join("\n");
    throw e;
  }
  throw new Error("no error");
};

describe("web configuration", () => {
  it("defaults: HTTPS on every IPv4 interface, port 3000, with a self-signed certificate beside the database", () => {
    expect(parse({})).toEqual({ host: "0.0.0.0", port: 3000, scheme: "https", tls: { kind: "self-signed", dir: "/srv/natfarm/data/tls" }, allowedHosts: [], dev: false });
  });

  it("NATFARM_HOST, PORT, a real certificate, extra hosts", () => {
    const c = parse({ NATFARM_HOST: "0:0::0", PORT: "8443", NATFARM_TLS_CERT: "etc/c.pem", NATFARM_TLS_KEY: "/etc/k.pem", NATFARM_ALLOWED_HOSTS: " console.example , 10.0.0.5,lb:8443," });
    expect(c).toMatchObject({ host: "::", port: 8443, tls: { kind: "files", cert: "/srv/natfarm/etc/c.pem", key: "/etc/k.pem" }, allowedHosts: ["console.example", "10.0.0.5", "lb:8443"] });
    expect(parse({ NATFARM_HOST: "localhost" }).host).toBe("127.0.0.1");
    expect(parse({ NATFARM_TLS_DIR: "/var/lib/natfarm/tls" }).tls).toEqual({ kind: "self-signed", dir: "/var/lib/natfarm/tls" });
    expect(parse({ NATFARM_HOST: " ", PORT: "" }).port).toBe(3000);
  });

  it("plain HTTP only when asked for, and only on loopback", () => {
    // Without NATFARM_HOST, plain HTTP stays on loopback rather than being refused.
    expect(parse({ NATFARM_TLS: "off" })).toMatchObject({ host: "127.0.0.1", scheme: "http", tls: { kind: "off" } });
    expect(parse({ NATFARM_TLS: "off", NATFARM_HOST: "::1" })).toMatchObject({ scheme: "http" });
    expect(issues({ NATFARM_TLS: "off", NATFARM_HOST: "0.0.0.0" })).toMatch(/NATFARM_TLS=off .* only allowed on a loopback address/);
    expect(issues({ NATFARM_TLS: "off", NATFARM_HOST: "198.51.100.1" })).toMatch(/loopback/);
    expect(issues({ NATFARM_TLS: "off", NATFARM_HOST: "::" })).toMatch(/loopback/);
  });

  it("refuses what it cannot honour, naming each variable", () => {
    expect(issues({ NATFARM_HOST: "console.example" })).toMatch(/NATFARM_HOST must be an IP address/);
    expect(issues({ NATFARM_HOST: "fe80::1%eth0" })).toMatch(/NATFARM_HOST/);
    expect(issues({ PORT: "0" })).toMatch(/PORT must be 1-65535/);
    expect(issues({ PORT: "3000x" })).toMatch(/PORT/);
    expect(issues({ NATFARM_TLS: "maybe" })).toMatch(/NATFARM_TLS must be on or off/);
    expect(issues({ NATFARM_TLS_CERT: "/c.pem" })).toMatch(/go together/);
    expect(issues({ NATFARM_ALLOWED_HOSTS: "ok.example,bad host" })).toMatch(/"bad host" is not a host name/);
    expect(issues({ PORT: "0", NATFARM_TLS: "x" }).split("\n")).toHaveLength(2);
  });

  it("the certificate's names: loopback, host name, listening address, extras; interface addresses on a wildcard", () => {
    const sys = { hostname: "lb1", interfaceAddresses: ["127.0.0.1", "192.0.2.7", "2001:db8::7"] };
    expect(certificateNames(parse({ NATFARM_HOST: "198.51.100.1", NATFARM_ALLOWED_HOSTS: "console.example:8443,[2001:db8::9]" }), sys)).toEqual({
      required: ["localhost", "127.0.0.1", "::1", "lb1", "198.51.100.1", "console.example", "2001:db8::9"],
      extra: [],
    });
    expect(certificateNames(parse({ NATFARM_HOST: "0.0.0.0" }), sys)).toEqual({ required: ["localhost", "127.0.0.1", "::1", "lb1"], extra: ["192.0.2.7", "2001:db8::7"] });
  });

  it("the URL an operator opens", () => {
    const sys = { hostname: "lb1" };
    expect(consoleUrl(parse({ NATFARM_HOST: "127.0.0.1" }), sys)).toBe("https://localhost:3000");
    expect(consoleUrl(parse({}), sys)).toBe("https://lb1:3000");
    expect(consoleUrl(parse({ NATFARM_HOST: "0.0.0.0" }), sys)).toBe("https://lb1:3000");
    expect(consoleUrl(parse({ NATFARM_HOST: "2001:db8::1", PORT: "8443" }), sys)).toBe("https://[2001:db8::1]:8443");
    expect(consoleUrl(parse({ NATFARM_TLS: "off" }), sys)).toBe("http://localhost:3000");
  });
});

describe("security headers", () => {
  it("every header, HSTS only over TLS", () => {
    const h = securityHeaders({ tls: true, dev: false });
    expect(h).toMatchObject({ "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Strict-Transport-Security": "max-age=31536000" });
    expect(securityHeaders({ tls: false, dev: false })["Strict-Transport-Security"]).toBeUndefined();
  });

  it("the CSP forbids framing, plugins, <base> and foreign form targets; eval only in dev", () => {
    const csp = contentSecurityPolicy({ tls: true, dev: false });
    const d = Object.fromEntries(csp.split("; ").map((s) => [s.split(" ")[0], s.split(" ").slice(1).join(" ")]));
    expect(d).toMatchObject({ "default-src": "'self'", "frame-ancestors": "'none'", "object-src": "'none'", "base-uri": "'self'", "form-action": "'self'", "script-src": "'self' 'unsafe-inline'", "connect-src": "'self'" });
    expect(csp).toContain("upgrade-insecure-requests");
    expect(contentSecurityPolicy({ tls: false, dev: false })).not.toContain("upgrade-insecure-requests");
    expect(contentSecurityPolicy({ tls: true, dev: true })).toMatch(/script-src 'self' 'unsafe-inline' 'unsafe-eval'.*connect-src 'self' wss:/);
  });
});

describe("users", () => {
  it("reads ids from passwd and group files", () => {
    const passwd = "root:x:0:0:root:/root:/bin/bash\nnatfarm:x:998:997::/nonexistent:/usr/sbin/nologin\n";
    expect(parseIdFile(passwd, "natfarm")).toBe(998);
    expect(parseIdFile(passwd, "root")).toBe(0);
    expect(parseIdFile(passwd, "nat")).toBeNull();
  });
});
