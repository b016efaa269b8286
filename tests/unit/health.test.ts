import net from "node:net";
import dgram from "node:dgram";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthMonitor } from "../../lib/health/monitor.ts";
import { httpProbe, probePort, tcpProbe, udpProbe } from "../../lib/health/probe.ts";
import { HealthCheckSchema } from "../../lib/farms/schema.ts";

const T = { failures: 3, passes: 2 };

describe("the health monitor", () => {
  it("takes a backend down after `failures` failures in a row, and back after `passes` passes", () => {
    const m = new HealthMonitor();
    expect(m.observe("b0", "up", false, "ECONNREFUSED", T)).toBeNull();
    expect(m.observe("b0", "up", false, "ECONNREFUSED", T)).toBeNull();
    expect(m.observe("b0", "up", false, "ECONNREFUSED", T)).toEqual({ key: "b0", from: "up", to: "down", detail: "ECONNREFUSED" });
    expect(m.observe("b0", "down", true, "connected", T)).toBeNull();
    expect(m.observe("b0", "down", true, "connected", T)).toEqual({ key: "b0", from: "down", to: "up", detail: "connected" });
  });

  it("a good probe between failures resets the count", () => {
    const m = new HealthMonitor();
    for (const ok of [false, false, true, false, false]) expect(m.observe("b1", "up", ok, "x", T)).toBeNull();
    expect(m.observe("b1", "up", false, "x", T)?.to).toBe("down");
  });
});

describe("probes (on loopback)", () => {
  let tcp: net.Server;
  let udp: dgram.Socket;
  let web: http.Server;
  const port = (s: { address(): unknown }) => (s.address() as net.AddressInfo).port;
  beforeAll(async () => {
    tcp = net.createServer((s) => s.end()).listen(0, "127.0.0.1");
    udp = dgram.createSocket("udp4").on("message", (_m, from) => udp.send("ok", from.port, from.address));
    web = http.createServer((req, res) => res.writeHead(req.url === "/health" ? 200 : 503).end()).listen(0, "127.0.0.1");
    await Promise.all([new Promise((r) => tcp.once("listening", r)), new Promise((r) => udp.bind(0, "127.0.0.1", () => r(null))), new Promise((r) => web.once("listening", r))]);
  });
  afterAll(() => {
    tcp.close();
    udp.close();
    web.close();
  });

  it("tcp: connect succeeds on a listener, fails on a closed port", async () => {
    expect((await tcpProbe("127.0.0.1", port(tcp), 1000)).ok).toBe(true);
    const closed = await tcpProbe("127.0.0.1", 1, 1000);
    expect(closed).toMatchObject({ ok: false, detail: "ECONNREFUSED" });
  });

  it("udp: an answer is healthy, a closed port is not", async () => {
    expect((await udpProbe("127.0.0.1", port(udp), 1000)).ok).toBe(true);
    expect((await udpProbe("127.0.0.1", 9, 500)).ok).toBe(false);
  });

  it("http: the expected status on the path is healthy, anything else is not", async () => {
    expect(await httpProbe("127.0.0.1", port(web), "/health", 200, 1000)).toMatchObject({ ok: true, detail: "HTTP 200" });
    expect(await httpProbe("127.0.0.1", port(web), "/", 200, 1000)).toMatchObject({ ok: false, detail: "HTTP 503" });
  });

  it("probe ports: the check's, else the backend's, else the farm's single port", () => {
    const check = HealthCheckSchema.parse({});
    expect(probePort({ ...check, port: 81 }, { port: 80 }, "443")).toBe(81);
    expect(probePort(check, { port: 80 }, "443")).toBe(80);
    expect(probePort(check, { port: null }, "443")).toBe(443);
    expect(probePort(check, { port: null }, "80,443")).toBeNull();
  });
});

describe("the checker loop", () => {
  it("probes on each farm's interval, and changes state only past the thresholds", async () => {
    const { HealthChecker } = await import("../../lib/health/checker.ts");
    let clock = 0;
    const healthy = new Map([["203.0.113.10", true], ["203.0.113.11", true]]);
    const state = new Map([[0x200, "up"], [0x201, "maintenance"]]);
    const probed: string[] = [];
    const changes: string[] = [];
    const checker = new HealthChecker({
      now: () => clock,
      loadFarms: async () => [
        {
          name: "web",
          ports: "80",
          healthcheck: HealthCheckSchema.parse({ interval: 2, timeout: 1, failures: 2, passes: 2 }),
          backends: [
            { mark: 0x200, ip: "203.0.113.10", port: null, state: state.get(0x200)! },
            { mark: 0x201, ip: "203.0.113.11", port: 80, state: state.get(0x201)! },
          ],
        },
      ],
      probe: async (_c, ip, port) => {
        probed.push(`${ip}:${port}`);
        return { ok: healthy.get(ip)!, detail: healthy.get(ip) ? "connected" : "ECONNREFUSED", ms: 1 };
      },
      setState: async (c) => {
        state.set(c.mark, c.to);
        changes.push(`${c.backend} ${c.from}->${c.to} (${c.detail})`);
      },
    });
    await checker.tick();
    expect(probed).toEqual(["203.0.113.10:80"]); // the backend in maintenance is not probed
    clock = 1000;
    await checker.tick();
    expect(probed).toHaveLength(1); // not due yet
    healthy.set("203.0.113.10", false);
    for (clock = 2000; clock <= 4000; clock += 2000) await checker.tick();
    expect(changes).toEqual(["203.0.113.10:80 up->down (ECONNREFUSED)"]);
    healthy.set("203.0.113.10", true);
    for (clock = 6000; clock <= 8000; clock += 2000) await checker.tick();
    expect(changes.at(-1)).toBe("203.0.113.10:80 down->up (connected)");
  });
});
