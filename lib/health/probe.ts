import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import type { HealthCheck } from "../farms/schema.ts";

/**
 * One probe of one backend, from wherever this process runs (the checker runs
 * inside the load balancer's network namespace, so it sees backends as the
 * balancer does). Plain sockets: no privileges needed.
 */
export interface ProbeResult {
  ok: boolean;
  /** Why it failed (ECONNREFUSED, timeout, HTTP 503, ...) or what it saw. */
  detail: string;
  ms: number;
}

export function tcpProbe(ip: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port });
    const done = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, detail, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(false, "timeout"), timeoutMs);
    socket.once("connect", () => done(true, "connected"));
    socket.once("error", (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

/** A datagram that must be answered: an ICMP port-unreachable or silence is a failure. */
export function udpProbe(ip: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    let settled = false;
    const done = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        /* not bound */
      }
      resolve({ ok, detail, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(false, "timeout"), timeoutMs);
    socket.once("error", (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
    socket.once("message", () => done(true, "answered"));
    socket.connect(port, ip, () => socket.send("natfarm health check\n", (e) => e && done(false, e.message)));
  });
}

export function httpProbe(ip: string, port: number, path: string, expectStatus: number, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const done = (ok: boolean, detail: string) => resolve({ ok, detail, ms: performance.now() - t0 });
    const req = http.get({ host: ip, port, path, timeout: timeoutMs, agent: false, headers: { "user-agent": "natfarm-health" } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      done(status === expectStatus, `HTTP ${status}`);
    });
    req.once("timeout", () => {
      req.destroy();
      done(false, "timeout");
    });
    req.once("error", (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

export function probe(check: HealthCheck, ip: string, port: number): Promise<ProbeResult> {
  const timeoutMs = check.timeout * 1000;
  if (check.type === "udp") return udpProbe(ip, port, timeoutMs);
  if (check.type === "http") return httpProbe(ip, port, check.path ?? "/", check.expectStatus ?? 200, timeoutMs);
  return tcpProbe(ip, port, timeoutMs);
}

/** The port a backend is probed on: the check's, the backend's, or the farm's single port. */
export function probePort(check: HealthCheck, backend: { port: number | null }, farmPorts: string): number | null {
  if (check.port !== undefined) return check.port;
  if (backend.port !== null) return backend.port;
  return /^\d+$/.test(farmPorts) ? Number(farmPorts) : null;
}
