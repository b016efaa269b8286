import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LabExistsError,
  LabInputError,
  labDown,
  labEnsureVip,
  labHold,
  labRemoveVip,
  labStartBackendServer,
  labStatus,
  labStopBackendServer,
  labTraffic,
  labUp,
  uniqueLabName,
} from "../../lib/lab/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { activeTestLabs, useLab } from "../helpers/lab.ts";

// Real namespaces: needs root (or passwordless sudo for the allowlisted programs).

async function namespaces(): Promise<string[]> {
  const { stdout } = await runPrivileged("ip", ["-j", "netns", "list"]);
  return (JSON.parse(stdout.trim() || "[]") as { name: string }[]).map((n) => n.name);
}

async function ourNamespaces(name: string): Promise<string[]> {
  return (await namespaces()).filter((ns) => ns.startsWith(`${name}-`));
}

/** Root ruleset without the parts that change by themselves (timestamps, counters). */
async function rootRuleset(): Promise<string> {
  const { stdout } = await runPrivileged("iptables-save", [], { allowFailure: true });
  return stdout
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, "[]"))
    .join("\n");
}

async function inNs(ns: string, program: "ip" | "sysctl", args: string[]): Promise<string> {
  return (await runPrivileged(program, args, { target: { kind: "netns", name: ns } })).stdout.trim();
}

const namesSeen = new Set<string>();
let rulesetBefore = "";

beforeAll(async () => {
  rulesetBefore = await rootRuleset();
});

afterAll(async () => {
  expect(activeTestLabs()).toEqual([]);
  const left = (await namespaces()).filter((ns) => [...namesSeen].some((n) => ns.startsWith(`${n}-`)));
  expect(left).toEqual([]);
  expect(await rootRuleset()).toBe(rulesetBefore);
});

describe("lab with 3 backends", () => {
  const lab = useLab({ backends: 3 });
  beforeAll(() => {
    namesSeen.add(lab.name);
  });

  it("creates client, lb and backend namespaces with the documented addresses", async () => {
    const info = lab.info;
    expect(info.clientNs).toBe(`${info.name}-client`);
    expect(info.lbNs).toBe(`${info.name}-lb`);
    expect(info.target).toBe(`netns:${info.name}-lb`);
    expect(info.backends.map((b) => [b.name, b.ip])).toEqual([
      ["b0", "203.0.113.10"],
      ["b1", "203.0.113.11"],
      ["b2", "203.0.113.12"],
    ]);
    expect((await ourNamespaces(info.name)).sort()).toEqual(
      [info.clientNs, info.lbNs, ...info.backendNs].sort(),
    );

    expect(await inNs(info.lbNs, "sysctl", ["-n", "net.ipv4.ip_forward"])).toBe("1");
    expect(await inNs(info.clientNs, "sysctl", ["-n", "net.ipv4.ip_forward"])).toBe("0");
    expect(await inNs(info.lbNs, "ip", ["-4", "-o", "addr", "show", "dev", info.lbClientIface])).toContain("198.51.100.1/24");
    expect(await inNs(info.lbNs, "ip", ["-4", "-o", "addr", "show", "dev", info.lbBridge])).toContain("203.0.113.1/24");
    expect(await inNs(info.clientNs, "ip", ["-4", "route", "show", "default"])).toContain("via 198.51.100.1");
    expect(await inNs(info.backendNs[2]!, "ip", ["-4", "-o", "addr", "show"])).toContain("203.0.113.12/24");
    expect(await inNs(info.backendNs[2]!, "ip", ["-4", "route", "show", "default"])).toContain("via 203.0.113.1");
    // The bridge holds exactly the backends' veths.
    const ports = await inNs(info.lbNs, "ip", ["-o", "link", "show", "master", info.lbBridge]);
    expect(ports.split("\n").map((l) => l.split(":")[1]!.trim().split("@")[0])).toEqual(["vb0", "vb1", "vb2"]);

    const status = await labStatus({ name: info.name });
    expect(status).toMatchObject({ name: info.name, vips: [], ports: [80, 443, 8080] });
    expect(status!.backends.map((b) => b.running)).toEqual([true, true, true]);
  });

  it("links nothing to the root namespace", async () => {
    const ids = new Map<number, string>();
    for (const entry of JSON.parse((await runPrivileged("ip", ["-j", "netns", "list"])).stdout.trim() || "[]") as {
      name: string;
      id?: number;
    }[]) {
      if (entry.id !== undefined) ids.set(entry.id, entry.name);
    }
    const rootLinks = JSON.parse((await runPrivileged("ip", ["-j", "link", "show"])).stdout) as { ifname: string; link_netnsid?: number }[];
    const intoLab = rootLinks.filter(
      (l) => l.link_netnsid !== undefined && (ids.get(l.link_netnsid) ?? "").startsWith(`${lab.name}-`),
    );
    expect(intoLab).toEqual([]);
  });

  it("a direct connection from the client reaches b0 through the LB's routing", async () => {
    const r = await labTraffic({ name: lab.name, vip: "203.0.113.10", port: 80, connections: 1 });
    expect(r).toMatchObject({ protocol: "tcp", vip: "203.0.113.10", port: 80, connections: 1, ok: 1, failed: 0 });
    expect(r.backends).toEqual({ b0: { count: 1, peers: { "198.51.100.2": 1 } } });
  });

  it("counts TCP connections per backend on every default port", async () => {
    for (const [i, port] of [80, 443, 8080].entries()) {
      const r = await labTraffic({ name: lab.name, vip: `203.0.113.${10 + i}`, port, connections: 200, concurrency: 16 });
      expect(r.ok).toBe(200);
      expect(r.errors).toEqual({});
      expect(r.backends).toEqual({ [`b${i}`]: { count: 200, peers: { "198.51.100.2": 200 } } });
    }
  });

  it("counts UDP datagrams per backend", async () => {
    const r = await labTraffic({ name: lab.name, vip: "203.0.113.11", port: 8080, connections: 300, protocol: "udp" });
    expect(r).toMatchObject({ protocol: "udp", ok: 300, failed: 0 });
    expect(r.backends).toEqual({ b1: { count: 300, peers: { "198.51.100.2": 300 } } });
  });

  it("adds a VIP once, routes it from the client, and removes it", async () => {
    await labEnsureVip({ name: lab.name, vip: "198.51.100.250" });
    await labEnsureVip({ name: lab.name, vip: "198.51.100.250" });
    expect((await labStatus({ name: lab.name }))!.vips).toEqual(["198.51.100.250"]);
    // No NAT rules yet: the LB itself answers, and nothing listens there.
    const tcp = await labTraffic({ name: lab.name, vip: "198.51.100.250", port: 80, connections: 3 });
    expect(tcp.errors).toEqual({ ECONNREFUSED: 3 });
    await labRemoveVip({ name: lab.name, vip: "198.51.100.250" });
    expect((await labStatus({ name: lab.name }))!.vips).toEqual([]);
  });

  it("stops and restarts one backend's server", async () => {
    await labStopBackendServer({ name: lab.name, index: 2 });
    expect((await labStatus({ name: lab.name }))!.backends.map((b) => b.running)).toEqual([true, true, false]);
    const tcp = await labTraffic({ name: lab.name, vip: "203.0.113.12", port: 80, connections: 4 });
    expect(tcp).toMatchObject({ ok: 0, failed: 4, errors: { ECONNREFUSED: 4 } });
    const udp = await labTraffic({ name: lab.name, vip: "203.0.113.12", port: 80, connections: 4, protocol: "udp" });
    expect(udp).toMatchObject({ ok: 0, failed: 4, errors: { ECONNREFUSED: 4 } });

    await labStartBackendServer({ name: lab.name, index: 2 });
    await labStartBackendServer({ name: lab.name, index: 2 }); // already running: no second server
    const again = await labTraffic({ name: lab.name, vip: "203.0.113.12", port: 80, connections: 4 });
    expect(again.backends).toEqual({ b2: { count: 4, peers: { "198.51.100.2": 4 } } });
  });

  it("holds one connection and notices when the server goes away", async () => {
    const steady = await labHold({ name: lab.name, vip: "203.0.113.10", port: 443, durationMs: 500, intervalMs: 100 });
    expect(steady).toMatchObject({ mode: "hold", closedBy: "client", failed: 0 });
    expect(steady.received).toBe(steady.sent);
    expect(Object.keys(steady.backends)).toEqual(["b0"]);

    const held = labHold({ name: lab.name, vip: "203.0.113.11", port: 80, durationMs: 4000, intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 600));
    await labStopBackendServer({ name: lab.name, index: 1 });
    const cut = await held;
    expect(cut.closedBy).not.toBe("client");
    expect(cut.received).toBeGreaterThan(0);
    expect(cut.durationMs).toBeLessThan(3500);
    await labStartBackendServer({ name: lab.name, index: 1 });
  });

  it("refuses to create a lab that already exists, and leaves it alone", async () => {
    await expect(labUp({ name: lab.name, backends: 1 })).rejects.toBeInstanceOf(LabExistsError);
    expect((await ourNamespaces(lab.name)).length).toBe(5);
  });
});

describe("lab lifecycle", () => {
  it("labDown removes every namespace and the state, and is quiet when repeated", async () => {
    const name = uniqueLabName("vt");
    namesSeen.add(name);
    const stateBase = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-lab-"));
    const saved = process.env.NATFARM_LAB_STATE_DIR;
    process.env.NATFARM_LAB_STATE_DIR = stateBase;
    try {
      const info = await labUp({ name, backends: 1, ports: [7000] });
      expect(info.ports).toEqual([7000]);
      expect(fs.existsSync(path.join(stateBase, name, "b0.pid"))).toBe(true);
      const r = await labTraffic({ name, vip: "203.0.113.10", port: 7000, connections: 2, protocol: "udp" });
      expect(r.ok).toBe(2);

      await labDown({ name });
      expect(await ourNamespaces(name)).toEqual([]);
      expect(fs.existsSync(path.join(stateBase, name))).toBe(false);
      expect(await labStatus({ name })).toBeNull();
      await labDown({ name });
    } finally {
      await labDown({ name });
      process.env.NATFARM_LAB_STATE_DIR = saved;
      if (saved === undefined) delete process.env.NATFARM_LAB_STATE_DIR;
      fs.rmSync(stateBase, { recursive: true, force: true });
    }
  });

  it("rolls back what it created when labUp fails midway", async () => {
    const name = uniqueLabName("vt");
    namesSeen.add(name);
    // A regular file where the state directory should go: namespaces and links
    // get created, then writing the state fails.
    const blocker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-lab-")), "not-a-dir");
    fs.writeFileSync(blocker, "");
    const saved = process.env.NATFARM_LAB_STATE_DIR;
    process.env.NATFARM_LAB_STATE_DIR = blocker;
    try {
      await expect(labUp({ name, backends: 2 })).rejects.toThrow(/failed and was rolled back/);
      expect(await ourNamespaces(name)).toEqual([]);
    } finally {
      process.env.NATFARM_LAB_STATE_DIR = saved;
      if (saved === undefined) delete process.env.NATFARM_LAB_STATE_DIR;
      await labDown({ name });
      fs.rmSync(path.dirname(blocker), { recursive: true, force: true });
    }
  });

  it("the traffic generator needs an existing lab", async () => {
    await expect(labTraffic({ name: uniqueLabName("vt"), vip: "203.0.113.10", port: 80, connections: 1 })).rejects.toThrow(/not up/);
  });
});

describe("lab input validation", () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ["upper-case name", () => labUp({ name: "Bad", backends: 1 }), /name: must be 1-12 characters/],
    ["long name", () => labUp({ name: "abcdefghijklm", backends: 1 }), /name: /],
    ["name with dash", () => labDown({ name: "a-b" }), /name: /],
    ["0 backends", () => labUp({ name: "x", backends: 0 }), /backends: must be 1\.\.32/],
    ["33 backends", () => labUp({ name: "x", backends: 33 }), /backends: must be 1\.\.32/],
    ["fractional backends", () => labUp({ name: "x", backends: 1.5 }), /backends: must be an integer/],
    ["port 0", () => labUp({ name: "x", backends: 1, ports: [0] }), /ports\.0: must be 1\.\.65535/],
    ["repeated ports", () => labUp({ name: "x", backends: 1, ports: [80, 80] }), /ports: ports must not repeat/],
    ["VIP outside", () => labEnsureVip({ name: "x", vip: "10.0.0.1" }), /vip: must be a host address inside 198\.51\.100\.0\/24/],
    ["VIP on backend side", () => labEnsureVip({ name: "x", vip: "203.0.113.50" }), /vip: /],
    ["VIP = LB address", () => labEnsureVip({ name: "x", vip: "198.51.100.1" }), /vip: .*LB's own address/],
    ["VIP broadcast", () => labEnsureVip({ name: "x", vip: "198.51.100.255" }), /vip: /],
    ["VIP not an address", () => labEnsureVip({ name: "x", vip: "198.51.100" }), /vip: must be an IPv4 address/],
    ["traffic elsewhere", () => labTraffic({ name: "x", vip: "192.0.2.1", port: 80, connections: 1 }), /vip: /],
    ["0 connections", () => labTraffic({ name: "x", vip: "203.0.113.10", port: 80, connections: 0 }), /connections: must be 1\.\.100000/],
    ["too many connections", () => labTraffic({ name: "x", vip: "203.0.113.10", port: 80, connections: 100_001 }), /connections: /],
    ["port 70000", () => labTraffic({ name: "x", vip: "203.0.113.10", port: 70000, connections: 1 }), /port: must be 1\.\.65535/],
    [
      "bad protocol",
      () => labTraffic({ name: "x", vip: "203.0.113.10", port: 80, connections: 1, protocol: "sctp" as "tcp" }),
      /protocol: must be "tcp" or "udp"/,
    ],
    ["backend index 32", () => labStopBackendServer({ name: "x", index: 32 }), /index: must be 0\.\.31/],
  ];
  it.each(cases)("rejects %s, naming the field", async (_label, call, message) => {
    const err = await call().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LabInputError);
    expect((err as Error).message).toMatch(message);
  });

  it("makes unique names that fit the rules", () => {
    const names = new Set(Array.from({ length: 50 }, () => uniqueLabName()));
    expect(names.size).toBe(50);
    for (const n of names) expect(n).toMatch(/^t[a-z0-9]{6}$/);
    expect(uniqueLabName("ci")).toMatch(/^ci[a-z0-9]{6}$/);
    expect(() => uniqueLabName("TOO-LONG")).toThrow(/prefix/);
  });
});
