#!/usr/bin/env node
// Cluster lab client: runs inside the client namespace
// (ip netns exec <lab>-client node lab-cluster-client.mjs ...) and is driven
// through stdin while the test fails and heals nodes, so nothing depends on
// guessing how long a failover takes on a loaded machine. Plain ESM
// JavaScript so it starts fast.
//
// Hold mode: N established TCP connections, each sending "ping k" every
// --interval-ms and waiting up to --timeout-ms for its answer (TCP
// retransmits what a failover dropped, so an answer can take seconds).
//   lab-cluster-client.mjs --hold 20 --vip V --port P [--interval-ms 200] [--timeout-ms 20000]
// Probe mode: a new UDP flow (own socket, own source port) every --every-ms,
// each waiting --timeout-ms for its answer; the times of the answers give the
// failover gap.
//   lab-cluster-client.mjs --probe --vip V --port P [--every-ms 10] [--timeout-ms 1000]
//
// stdin: "report" prints one JSON line of the state so far; "stop" ends
// everything, prints the final JSON line and exits. stdin closing = "stop".
// Times are milliseconds since the Unix epoch.
import net from "node:net";
import dgram from "node:dgram";
import readline from "node:readline";

function usage(message) {
  process.stderr.write(`lab-cluster-client: ${message}\n`);
  process.exit(2);
}

const o = { hold: 0, probe: false, vip: "", port: 0, intervalMs: 200, timeoutMs: 20000, everyMs: 10 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  if (flag === "--probe") {
    o.probe = true;
    continue;
  }
  const value = argv[++i];
  if (value === undefined) usage(`missing value for ${flag}`);
  const n = Number(value);
  if (flag === "--vip") o.vip = value;
  else if (flag === "--hold" || flag === "--port" || flag === "--interval-ms" || flag === "--timeout-ms" || flag === "--every-ms") {
    if (!Number.isInteger(n) || n < 1) usage(`${flag} must be a positive integer, got "${value}"`);
    o[{ "--hold": "hold", "--port": "port", "--interval-ms": "intervalMs", "--timeout-ms": "timeoutMs", "--every-ms": "everyMs" }[flag]] = n;
  } else usage(`unknown option ${flag}`);
}
if (!net.isIPv4(o.vip)) usage("--vip must be an IPv4 address");
if (o.port < 1 || o.port > 65535) usage("--port must be 1..65535");
if (!o.probe && (o.hold < 1 || o.hold > 1000)) usage("--hold must be 1..1000 (or use --probe)");

const errorName = (err) => err?.code ?? err?.message ?? String(err);

/** One held connection. */
function holdOne(id) {
  const c = { id, localPort: null, sent: 0, received: 0, lastReplyAt: null, maxWaitMs: 0, backend: null, peer: null, closed: null, error: null };
  let socket;
  let buffered = "";
  let greeted = false;
  let waitingSince = null;
  let timer = null;
  let stopping = false;
  const end = (why, error) => {
    if (c.closed) return;
    c.closed = why;
    if (error) c.error = error;
    clearTimeout(timer);
    socket.destroy();
  };
  const ping = () => {
    if (c.closed || stopping) return;
    c.sent++;
    waitingSince = Date.now();
    socket.write(`ping ${c.sent}\n`);
    timer = setTimeout(() => end("timeout", `no answer to ping ${c.sent} within ${o.timeoutMs} ms`), o.timeoutMs);
  };
  const opened = new Promise((resolve) => {
    socket = net.connect({ host: o.vip, port: o.port });
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      end("error", "connect timeout");
      resolve();
    }, o.timeoutMs);
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let reply;
        try {
          reply = JSON.parse(line);
        } catch {
          return end("error", `bad reply ${JSON.stringify(line.slice(0, 80))}`);
        }
        if (!greeted) {
          greeted = true;
          clearTimeout(connectTimer);
          c.localPort = socket.localPort;
          c.backend = reply.backend;
          c.peer = reply.peer;
          resolve();
          ping();
          continue;
        }
        clearTimeout(timer);
        const now = Date.now();
        c.received++;
        c.lastReplyAt = now;
        c.maxWaitMs = Math.max(c.maxWaitMs, now - waitingSince);
        if (reply.backend !== c.backend) return end("error", `answered by ${reply.backend}, opened on ${c.backend}`);
        setTimeout(ping, o.intervalMs);
      }
    });
    socket.on("error", (err) => {
      clearTimeout(connectTimer);
      end("error", errorName(err));
      resolve();
    });
    socket.on("close", () => {
      clearTimeout(connectTimer);
      end(stopping ? "client" : "server", stopping ? null : "closed by the far end");
      resolve();
    });
  });
  return {
    state: c,
    opened,
    stop: () =>
      new Promise((resolve) => {
        stopping = true;
        clearTimeout(timer);
        if (c.closed) return resolve();
        socket.once("close", () => resolve());
        socket.end("bye\n");
        setTimeout(() => {
          end("client");
          resolve();
        }, 2000);
      }),
  };
}

function startHold() {
  const conns = Array.from({ length: o.hold }, (_, i) => holdOne(i));
  const ready = Promise.all(conns.map((c) => c.opened)).then(() => print({ type: "ready", at: Date.now(), conns: conns.map((c) => c.state) }));
  return {
    report: () => ({ type: "report", at: Date.now(), conns: conns.map((c) => c.state) }),
    stop: async () => {
      await ready;
      await Promise.all(conns.map((c) => c.stop()));
      return { type: "final", at: Date.now(), conns: conns.map((c) => c.state) };
    },
  };
}

function startProbe() {
  // [sentAt, answeredAt | null, backend | null]
  const probes = [];
  let inFlight = 0;
  const one = () => {
    const p = [Date.now(), null, null];
    probes.push(p);
    const socket = dgram.createSocket({ type: "udp4" });
    inFlight++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // never bound
      }
    };
    const timer = setTimeout(finish, o.timeoutMs);
    socket.on("error", finish);
    socket.on("message", (msg) => {
      p[1] = Date.now();
      try {
        p[2] = JSON.parse(msg.toString("utf8").split("\n")[0]).backend ?? null;
      } catch {
        // an answer all the same
      }
      finish();
    });
    socket.send("probe\n", o.port, o.vip, (err) => err && finish());
  };
  const every = setInterval(one, o.everyMs);
  one();
  return {
    report: () => ({ type: "report", at: Date.now(), sent: probes.length, answered: probes.filter((p) => p[1] !== null).length }),
    stop: async () => {
      clearInterval(every);
      const deadline = Date.now() + o.timeoutMs + 500;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return { type: "final", at: Date.now(), probes };
    },
  };
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const run = o.probe ? startProbe() : startHold();
if (o.probe) print({ type: "ready", at: Date.now() });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  print(await run.stop());
  process.exit(0);
};
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "report") print(run.report());
  else if (cmd === "stop") void stop();
});
rl.on("close", () => void stop());
process.on("SIGTERM", () => void stop());
