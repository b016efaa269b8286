#!/usr/bin/env node
// Lab backend: runs inside a backend namespace (ip netns exec <lab>-b<i> node lab-backend.mjs ...)
// and answers every TCP connection and every UDP datagram with one JSON line
// naming itself and the peer it sees, so tests can tell which real server a
// connection reached and whether it was source-NATed on the way.
//
// Plain ESM JavaScript on purpose: it must start fast, without a TS loader.
//
// Usage: lab-backend.mjs --name b0 --ip 203.0.113.10 [--ports 80,443,8080] [--pid-file F]
//
// TCP protocol: the server greets with the JSON line at once. Every line the
// client sends afterwards gets the JSON line back with "seq" added (used by
// long-lived connections, e.g. drain tests); the line "bye" makes the server
// close. The server closing first keeps TIME_WAIT on the backend side, so a
// client opening thousands of connections does not run out of source ports.
import net from "node:net";
import dgram from "node:dgram";
import fs from "node:fs";

function parseArgs(argv) {
  const out = { name: "", ip: "", ports: [80, 443, 8080], pidFile: "" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === "--name") out.name = value;
    else if (flag === "--ip") out.ip = value;
    else if (flag === "--ports") out.ports = value.split(",").map((p) => Number(p));
    else if (flag === "--pid-file") out.pidFile = value;
    else throw new Error(`unknown option ${flag}`);
    i++;
  }
  if (!/^b\d{1,2}$/.test(out.name)) throw new Error("--name must be b<index>");
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(out.ip)) throw new Error("--ip must be an IPv4 address");
  if (out.ports.length === 0 || out.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error("--ports must be a comma-separated list of ports 1..65535");
  }
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const log = (msg) => process.stderr.write(`${new Date().toISOString()} ${opts.name} ${msg}\n`);

function answer(peer, port, extra) {
  return JSON.stringify({ backend: opts.name, ip: opts.ip, peer, port, ...extra }) + "\n";
}

function stripMapped(address) {
  return address?.startsWith("::ffff:") ? address.slice(7) : (address ?? "");
}

function startTcp(port) {
  const server = net.createServer({ allowHalfOpen: false }, (socket) => {
    const peer = stripMapped(socket.remoteAddress);
    // Idle connections are dropped eventually so a crashed client cannot pin
    // sockets in the namespace forever.
    socket.setTimeout(10 * 60_000, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.write(answer(peer, port));
    let buffered = "";
    let seq = 0;
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      if (buffered.length > 65536) return socket.destroy();
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line === "bye") {
          socket.end();
          return;
        }
        seq++;
        socket.write(answer(peer, port, { seq }));
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: "0.0.0.0", backlog: 4096 }, () => {
      server.off("error", reject);
      server.on("error", (err) => log(`tcp ${port}: ${err.message}`));
      resolve(server);
    });
  });
}

function startUdp(port) {
  const socket = dgram.createSocket({ type: "udp4" });
  socket.on("message", (_msg, rinfo) => {
    socket.send(answer(rinfo.address, port), rinfo.port, rinfo.address, (err) => {
      if (err) log(`udp ${port} reply to ${rinfo.address}:${rinfo.port}: ${err.message}`);
    });
  });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ port, address: "0.0.0.0", exclusive: true }, () => {
      socket.off("error", reject);
      socket.on("error", (err) => log(`udp ${port}: ${err.message}`));
      resolve(socket);
    });
  });
}

try {
  await Promise.all(opts.ports.flatMap((port) => [startTcp(port), startUdp(port)]));
} catch (err) {
  log(`cannot listen: ${err.message}`);
  process.exit(1);
}

// The pid file doubles as the readiness signal: it appears only once every
// listener is bound, and is written atomically so readers never see half a pid.
if (opts.pidFile) {
  const tmp = `${opts.pidFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${process.pid}\n`);
  fs.renameSync(tmp, opts.pidFile);
}
log(`listening on ${opts.ip} tcp+udp ${opts.ports.join(",")}`);

const stop = (signal) => {
  log(`stopping on ${signal}`);
  if (opts.pidFile) {
    try {
      if (fs.readFileSync(opts.pidFile, "utf8").trim() === String(process.pid)) fs.unlinkSync(opts.pidFile);
    } catch {
      // already gone: labDown may have removed the state directory first
    }
  }
  process.exit(0);
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
