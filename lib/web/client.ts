import http from "node:http";
import https from "node:https";

/**
 * A small HTTP(S) client for the tests, the browser harness and the benches
 * that talk to the console: Node's fetch cannot be told to trust one
 * self-signed certificate without an extra package. `ca` trusts exactly that
 * certificate (its names are checked as usual); `insecure` accepts any.
 */
export interface ConsoleRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** PEM certificate(s) to trust. */
  ca?: string;
  /** Accept any certificate (like curl -k). */
  insecure?: boolean;
  timeoutMs?: number;
  /** Sent as TLS SNI / checked against the certificate instead of the URL's host. */
  servername?: string;
}

export interface ConsoleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Milliseconds until the first body byte, and until the end. */
  firstByteMs: number;
  totalMs: number;
  /** Number of body chunks received (more than one: the answer was streamed). */
  chunks: number;
}

export function request(url: string, o: ConsoleRequest = {}): Promise<ConsoleResponse> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: o.method ?? "GET",
        headers: o.headers,
        ...(u.protocol === "https:" ? { ca: o.ca, rejectUnauthorized: !o.insecure, servername: o.servername, agent: false } : { agent: false }),
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const parts: Buffer[] = [];
        let firstByteMs = -1;
        res.on("data", (d: Buffer) => {
          if (firstByteMs < 0) firstByteMs = performance.now() - started;
          parts.push(d);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString("utf8"),
            firstByteMs: firstByteMs < 0 ? performance.now() - started : firstByteMs,
            totalMs: performance.now() - started,
            chunks: parts.length,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${o.method ?? "GET"} ${url}: no answer within ${o.timeoutMs ?? 30_000} ms`)));
    req.on("error", reject);
    req.end(o.body);
  });
}
