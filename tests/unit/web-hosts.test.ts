import { describe, expect, it } from "vitest";
import { buildHostPolicy, canonicalHost, checkHost, checkOrigin, isLoopback, isWildcard, parseHostHeader, parseOrigin, type HostPolicyInput } from "../../lib/web/hosts.ts";

const base: HostPolicyInput = {
  scheme: "https",
  listenHost: "127.0.0.1",
  port: 3000,
  hostname: "lb1",
  interfaceAddresses: ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::7"],
  allowed: [],
};
const policy = (o: Partial<HostPolicyInput> = {}) => buildHostPolicy({ ...base, ...o });
const ok = { ok: true };

describe("host names and headers", () => {
  it("canonicalizes names and addresses", () => {
    expect(canonicalHost("LocalHost.")).toBe("localhost");
    expect(canonicalHost("[0:0:0:0:0:0:0:1]")).toBe("::1");
    expect(canonicalHost("2001:DB8:0::7")).toBe("2001:db8::7");
    expect(canonicalHost("127.0.0.1")).toBe("127.0.0.1");
    // Other spellings of IPv4 are not names, and not accepted as addresses either.
    for (const bad of ["127.1", "2130706433", "0x7f.0.0.1", "", "a..b", "-a", "a b", "fe80::1%eth0"]) expect(canonicalHost(bad), bad).toBeNull();
  });

  it("parses Host headers, refusing malformed ones", () => {
    expect(parseHostHeader("127.0.0.1:3000")).toEqual({ host: "127.0.0.1", port: 3000 });
    expect(parseHostHeader("[::1]:3000")).toEqual({ host: "::1", port: 3000 });
    expect(parseHostHeader("[::1]")).toEqual({ host: "::1", port: null });
    expect(parseHostHeader("Console.Example")).toEqual({ host: "console.example", port: null });
    for (const bad of ["", "::1", "::1:3000", "[::1", "[::1]x", "a:0", "a:65536", "a:", "a:3000:1", "user@a", "a/b", "a b", "[localhost]", "127.0.0.1:+1"]) {
      expect(parseHostHeader(bad), bad).toBeNull();
    }
    expect(parseHostHeader(undefined)).toBeNull();
  });

  it("parses Origins with their default ports", () => {
    expect(parseOrigin("https://127.0.0.1:3000")).toEqual({ scheme: "https", host: "127.0.0.1", port: 3000 });
    expect(parseOrigin("https://console.example")).toEqual({ scheme: "https", host: "console.example", port: 443 });
    expect(parseOrigin("HTTP://[::1]")).toEqual({ scheme: "http", host: "::1", port: 80 });
    for (const bad of ["null", "", "https://", "https://a/", "https://a:3000/path", "ftp://a", "file://", "https://evil.example@127.0.0.1"]) expect(parseOrigin(bad), bad).toBeNull();
  });

  it("knows loopback and wildcard addresses", () => {
    for (const h of ["127.0.0.1", "127.5.6.7", "::1", "localhost", "::ffff:127.0.0.1"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "192.0.2.1", "198.51.100.1", "lb1"]) expect(isLoopback(h), h).toBe(false);
    expect(isWildcard("0.0.0.0")).toBe(true);
    expect(isWildcard("::")).toBe(true);
    expect(isWildcard("0:0::0")).toBe(true);
    expect(isWildcard("127.0.0.1")).toBe(false);
  });
});

describe("the Host check (DNS rebinding)", () => {
  it("accepts the console's own names, with no port or the listening port", () => {
    const p = policy();
    for (const h of ["localhost", "localhost:3000", "127.0.0.1", "127.0.0.1:3000", "[::1]:3000", "[::1]", "lb1:3000", "LB1", "localhost.:3000"]) expect(checkHost(p, h), h).toEqual(ok);
  });

  it("refuses other names (421), other ports, a missing or malformed header (400)", () => {
    const p = policy();
    expect(checkHost(p, "evil.example")).toMatchObject({ ok: false, status: 421 });
    expect(checkHost(p, "evil.example:3000")).toMatchObject({ ok: false, status: 421 });
    expect(checkHost(p, "127.0.0.1:3001")).toMatchObject({ ok: false, status: 421 });
    // Listening on loopback: the interface addresses are not its names.
    expect(checkHost(p, "192.0.2.7:3000")).toMatchObject({ ok: false, status: 421 });
    expect(checkHost(p, undefined)).toMatchObject({ ok: false, status: 400 });
    expect(checkHost(p, "")).toMatchObject({ ok: false, status: 400 });
    expect(checkHost(p, "a b")).toMatchObject({ ok: false, status: 400 });
    expect(checkHost(p, "127.1:3000")).toMatchObject({ ok: false, status: 400 });
  });

  it("a specific listening address is a name; on a wildcard every interface address is", () => {
    expect(checkHost(policy({ listenHost: "198.51.100.1" }), "198.51.100.1:3000")).toEqual(ok);
    expect(checkHost(policy({ listenHost: "198.51.100.1" }), "192.0.2.7:3000")).toMatchObject({ status: 421 });
    const any = policy({ listenHost: "0.0.0.0" });
    expect(checkHost(any, "192.0.2.7:3000")).toEqual(ok);
    expect(checkHost(any, "[2001:db8::7]:3000")).toEqual(ok);
    expect(checkHost(any, "192.0.2.8:3000")).toMatchObject({ status: 421 });
    expect(checkHost(policy({ listenHost: "::" }), "[2001:0db8::7]")).toEqual(ok);
  });

  it("NATFARM_ALLOWED_HOSTS adds names, addresses and name:port pairs", () => {
    const p = policy({ allowed: ["Console.Example", "203.0.113.9", "[2001:db8::9]", "2001:db8::10", "proxy.example:8443"] });
    for (const h of ["console.example", "console.example:3000", "203.0.113.9:3000", "[2001:db8::9]:3000", "[2001:db8::10]", "proxy.example:8443"]) expect(checkHost(p, h), h).toEqual(ok);
    expect(checkHost(p, "proxy.example")).toMatchObject({ status: 421 });
    expect(checkHost(p, "proxy.example:3000")).toMatchObject({ status: 421 });
    expect(checkHost(p, "console.example:8443")).toMatchObject({ status: 421 });
  });
});

describe("the Origin check (CSRF)", () => {
  const p = policy();
  const req = (method: string, origin?: string, secFetchSite?: string, host = "127.0.0.1:3000") => checkOrigin(p, { method, host, origin, secFetchSite });

  it("GET, HEAD and OPTIONS need no Origin", () => {
    for (const m of ["GET", "HEAD", "OPTIONS", "get"]) expect(req(m), m).toEqual(ok);
    expect(req("GET", "https://evil.example")).toEqual(ok);
  });

  it("a state-changing request needs the very origin it was sent to", () => {
    for (const m of ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"]) {
      expect(req(m, "https://127.0.0.1:3000"), m).toEqual(ok);
      expect(req(m), m).toMatchObject({ ok: false, status: 403 });
      expect(req(m, "https://evil.example"), m).toMatchObject({ ok: false, status: 403 });
    }
    expect(checkOrigin(p, { method: "POST", host: "[::1]:3000", origin: "https://[::1]:3000", secFetchSite: undefined })).toEqual(ok);
    expect(checkOrigin(p, { method: "POST", host: "localhost", origin: "https://localhost", secFetchSite: undefined })).toEqual(ok);
  });

  it("refuses look-alikes: other scheme, port, host of the console, null, garbage", () => {
    for (const o of ["http://127.0.0.1:3000", "https://127.0.0.1:3001", "https://127.0.0.1", "https://localhost:3000", "null", "https://127.0.0.1:3000/", "https://127.0.0.1:3000.evil.example", ""]) {
      expect(req("POST", o), o).toMatchObject({ ok: false, status: 403 });
    }
  });

  it("without Origin, only Sec-Fetch-Site: same-origin passes", () => {
    expect(req("POST", undefined, "same-origin")).toEqual(ok);
    for (const s of ["same-site", "cross-site", "none", ""]) expect(req("POST", undefined, s), s).toMatchObject({ ok: false, status: 403 });
    // An Origin that is present decides, whatever Sec-Fetch-Site says.
    expect(req("POST", "https://evil.example", "same-origin")).toMatchObject({ ok: false, status: 403 });
  });

  it("plain HTTP on loopback (NATFARM_TLS=off) expects http origins", () => {
    const h = policy({ scheme: "http" });
    expect(checkOrigin(h, { method: "POST", host: "127.0.0.1:3000", origin: "http://127.0.0.1:3000", secFetchSite: undefined })).toEqual(ok);
    expect(checkOrigin(h, { method: "POST", host: "127.0.0.1:3000", origin: "https://127.0.0.1:3000", secFetchSite: undefined })).toMatchObject({ status: 403 });
    expect(checkOrigin(h, { method: "POST", host: "localhost", origin: "http://localhost", secFetchSite: undefined })).toEqual(ok);
  });
});
