#!/usr/bin/env node
// Lab traffic generator: runs inside the client namespace
// (ip netns exec <lab>-client node lab-client.mjs ...) and prints ONE JSON
// object on stdout when done. Plain ESM JavaScript so it starts fast.
//
// Burst mode (default): C new connections (TCP) or C one-datagram flows (UDP)
// to VIP:PORT, bounded concurrency, each from its own source port.
//   lab-client.mjs --protocol tcp --vip 198.51.100.250 --port 80 --connections 100
//                  [--concurrency 32] [--timeout-ms 3000] [--sources 198.51.100.100,198.51.100.101]
//   -> {"protocol","vip","port","connections","ok","failed","errors":{msg:n},
//       "backends":{"b0":{"count":n,"peers":{"198.51.100.2":n}}},"durationMs"}
//
// Hold mode: ONE connection (TCP) or ONE source port (UDP) kept for
// --duration-ms, exchanging a line every --interval-ms (drain/persistence tests).
//   lab-client.mjs --hold --protocol tcp --vip V --port P --duration-ms 5000 --interval-ms 200
//   -> {"mode":"hold",...,"sent","received","failed","errors","backends","closedBy"}
//
// Source ports are chosen here, not by the kernel: the kernel picks UDP ports
// at random, so a burst of a few hundred datagrams would reuse some ports and
// those would ride an existing conntrack entry instead of being new
// connections. A sequential walk from a random start keeps every port unique
// within a run (up to the 55,536 ports of the range; beyond that it wraps).
import net from "node:net";
import dgram from "node:dgram";
import { randomInt } from "node:crypto";

const PORT_MIN = 10000;
const PORT_MAX = 65535;
const PORT_SPAN = PORT_MAX - PORT_MIN + 1;
const BIND_RETRIES = 64;

function usage(message) {
  process.stderr.write(`lab-client: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    protocol: "tcp",
    vip: "",
    port: 0,
    connections: 1,
    concurrency: 32,
    timeoutMs: 3000,
    hold: false,
    durationMs: 5000,
    intervalMs: 200,
    sources: [],
  };
  const numeric = {
    "--port": "port",
    "--connections": "connections",
    "--concurrency": "concurrency",
    "--timeout-ms": "timeoutMs",
    "--duration-ms": "durationMs",
    "--interval-ms": "intervalMs",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--hold") {
      o.hold = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) usage(`missing value for ${flag}`);
    if (flag === "--protocol") o.protocol = value;
    else if (flag === "--vip") o.vip = value;
    else if (flag === "--sources") o.sources = value.split(",");
    else if (flag in numeric) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) usage(`${flag} must be a positive integer, got "${value}"`);
      o[numeric[flag]] = n;
    } else usage(`unknown option ${flag}`);
  }
  if (o.protocol !== "tcp" && o.protocol !== "udp") usage(`--protocol must be tcp or udp`);
  if (net.isIPv4(o.vip) === false) usage(`--vip must be an IPv4 address`);
  if (o.port > 65535) usage(`--port must be 1..65535`);
  if (o.port < 1) usage(`--port is required`);
  if (o.sources.some((a) => !net.isIPv4(a))) usage(`--sources must be IPv4 addresses separated by commas`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));

let portCursor = randomInt(PORT_SPAN);
function nextSourcePort() {
  const port = PORT_MIN + portCursor;
  portCursor = (portCursor + 1) % PORT_SPAN;
  return port;
}

const PORT_BUSY = new Set(["EADDRINUSE", "EADDRNOTAVAIL"]);

class Tally {
  constructor() {
    this.ok = 0;
    this.failed = 0;
    this.errors = {};
    this.backends = {};
    this.bySource = {};
  }
  success(reply, source) {
    this.ok++;
    if (source) {
      const per = (this.bySource[source] ??= {});
      per[reply.backend] = (per[reply.backend] ?? 0) + 1;
    }
    const entry = (this.backends[reply.backend] ??= { count: 0, peers: {} });
    entry.count++;
    entry.peers[reply.peer] = (entry.peers[reply.peer] ?? 0) + 1;
  }
  failure(message) {
    this.failed++;
    this.errors[message] = (this.errors[message] ?? 0) + 1;
  }
}

function parseReply(line) {
  try {
    const reply = JSON.parse(line);
    if (typeof reply?.backend === "string" && typeof reply?.peer === "string") return reply;
  } catch {
    // fall through: counted as a bad reply
  }
  return null;
}

const errorName = (err) => err?.code ?? err?.message ?? String(err);

/** One TCP connection: resolves {reply} or {error}, or {busy} when the source port was taken. */
function tcpOnce(localPort, localAddress = "0.0.0.0") {
  return new Promise((resolve) => {
    let settled = false;
    let reply = null;
    let buffered = "";
    const socket = net.connect({ host: opts.vip, port: opts.port, localPort, localAddress });
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(reply ? { reply } : { error: "timeout" }), opts.timeoutMs);
    socket.on("connect", () => socket.write("bye\n"));
    socket.on("data", (chunk) => {
      if (reply) return;
      buffered += chunk.toString("utf8");
      const nl = buffered.indexOf("\n");
      if (nl < 0) return;
      reply = parseReply(buffered.slice(0, nl));
      // Once answered, wait for the server's FIN (it closes first, see lab-backend.mjs)
      // so concurrency stays bounded; the timer still caps the wait.
      if (!reply) finish({ error: "bad reply" });
    });
    socket.on("error", (err) => {
      if (reply) return finish({ reply });
      const code = errorName(err);
      finish(PORT_BUSY.has(code) ? { busy: true } : { error: code });
    });
    socket.on("close", () => finish(reply ? { reply } : { error: "closed without reply" }));
  });
}

/** One UDP flow: a fresh socket on its own source port, one datagram, one reply. */
function udpOnce(localPort, localAddress = "0.0.0.0") {
  return new Promise((resolve) => {
    let settled = false;
    const socket = dgram.createSocket({ type: "udp4" });
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // never bound
      }
      resolve(result);
    };
    const timer = setTimeout(() => finish({ error: "timeout" }), opts.timeoutMs);
    socket.on("error", (err) => {
      const code = errorName(err);
      finish(PORT_BUSY.has(code) ? { busy: true } : { error: code });
    });
    socket.on("message", (msg) => {
      const reply = parseReply(msg.toString("utf8").split("\n")[0]);
      finish(reply ? { reply } : { error: "bad reply" });
    });
    socket.bind({ port: localPort, address: localAddress, exclusive: true }, () => {
      // Connected so an ICMP port-unreachable surfaces as ECONNREFUSED instead of a timeout.
      socket.connect(opts.port, opts.vip, (err) => {
        if (err) return finish({ error: errorName(err) });
        socket.send("hello\n", (sendErr) => {
          if (sendErr) finish({ error: errorName(sendErr) });
        });
      });
    });
  });
}

async function attempt(once, source) {
  for (let i = 0; i < BIND_RETRIES; i++) {
    const result = await once(nextSourcePort(), source);
    if (!result.busy) return result;
  }
  return { error: "no free source port" };
}

async function burst() {
  const tally = new Tally();
  const once = opts.protocol === "tcp" ? tcpOnce : udpOnce;
  let started = 0;
  const worker = async () => {
    while (started < opts.connections) {
      // --sources: connection i comes from source i mod n, to act as many clients.
      const source = opts.sources.length ? opts.sources[started % opts.sources.length] : undefined;
      started++;
      const result = await attempt(once, source);
      if (result.reply) tally.success(result.reply, source);
      else tally.failure(result.error);
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.connections) }, worker));
  return {
    protocol: opts.protocol,
    vip: opts.vip,
    port: opts.port,
    connections: opts.connections,
    ok: tally.ok,
    failed: tally.failed,
    errors: tally.errors,
    backends: tally.backends,
    ...(opts.sources.length ? { bySource: tally.bySource } : {}),
    durationMs: Date.now() - t0,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends a line every intervalMs and expects one reply line per message.
 * `transport` hides TCP vs UDP: open(), send(line), onLine(cb), onClose(cb), close().
 */
async function holdWith(transport) {
  const tally = new Tally();
  let sent = 0;
  let closedBy = "client";
  let closed = false;
  let pending = null;
  const t0 = Date.now();
  transport.onLine((line) => {
    if (line.startsWith("!")) {
      tally.failure(line.slice(1));
      if (pending) pending();
      return;
    }
    const reply = parseReply(line);
    if (reply) tally.success(reply);
    else tally.failure("bad reply");
    if (pending) pending();
  });
  transport.onClose((why) => {
    if (closed) return;
    closed = true;
    closedBy = why;
    if (pending) pending();
  });
  try {
    await transport.open();
  } catch (err) {
    tally.failure(errorName(err));
    closedBy = "error";
    closed = true;
  }
  while (!closed && Date.now() - t0 < opts.durationMs) {
    const before = tally.ok + tally.failed;
    const answered = new Promise((resolve) => (pending = resolve));
    transport.send(`ping ${++sent}\n`);
    const timedOut = await Promise.race([answered.then(() => false), sleep(opts.timeoutMs).then(() => true)]);
    pending = null;
    if (timedOut && tally.ok + tally.failed === before) tally.failure("timeout");
    if (!closed) await sleep(opts.intervalMs);
  }
  if (!closed) transport.close();
  return {
    mode: "hold",
    protocol: opts.protocol,
    vip: opts.vip,
    port: opts.port,
    sent,
    received: tally.ok,
    failed: tally.failed,
    errors: tally.errors,
    backends: tally.backends,
    closedBy,
    durationMs: Date.now() - t0,
  };
}

function tcpTransport() {
  let socket;
  let lineCb = () => {};
  let closeCb = () => {};
  let buffered = "";
  let greeted = false;
  let closing = false;
  return {
    open: () =>
      new Promise((resolve, reject) => {
        socket = net.connect({ host: opts.vip, port: opts.port });
        const timer = setTimeout(() => {
          socket.destroy();
          reject(Object.assign(new Error("timeout"), { code: "timeout" }));
        }, opts.timeoutMs);
        socket.once("connect", () => {
          clearTimeout(timer);
          resolve();
        });
        socket.on("error", (err) => {
          clearTimeout(timer);
          if (!socket.connecting && !closing) closeCb("error");
          reject(err);
        });
        socket.on("close", () => closeCb(closing ? "client" : "server"));
        socket.on("data", (chunk) => {
          buffered += chunk.toString("utf8");
          let nl;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            // The greeting is not an answer to a ping.
            if (!greeted) greeted = true;
            else lineCb(line);
          }
        });
      }),
    send: (line) => socket.write(line),
    onLine: (cb) => (lineCb = cb),
    onClose: (cb) => (closeCb = cb),
    close: () => {
      closing = true;
      socket.end("bye\n");
    },
  };
}

function udpTransport() {
  let socket;
  let lineCb = () => {};
  return {
    open: async () => {
      for (let i = 0; i < BIND_RETRIES; i++) {
        socket = dgram.createSocket({ type: "udp4" });
        const err = await new Promise((resolve) => {
          socket.once("error", resolve);
          socket.bind({ port: nextSourcePort(), address: "0.0.0.0", exclusive: true }, () => resolve(null));
        });
        if (!err) break;
        socket.close();
        if (!PORT_BUSY.has(err.code)) throw err;
      }
      await new Promise((resolve, reject) => socket.connect(opts.port, opts.vip, (e) => (e ? reject(e) : resolve())));
      // A refused datagram must count as a failed exchange, not end the flow.
      socket.on("error", (err) => lineCb(`!${errorName(err)}`));
      socket.on("message", (msg) => lineCb(msg.toString("utf8").split("\n")[0]));
    },
    send: (line) => socket.send(line),
    onLine: (cb) => (lineCb = cb),
    onClose: () => {},
    close: () => socket.close(),
  };
}

const result = opts.hold ? await holdWith(opts.protocol === "tcp" ? tcpTransport() : udpTransport()) : await burst();
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
