import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentCall, agentKernel, AgentUnavailableError } from "../../lib/agent/client.ts";
import { MAX_REQUEST_BYTES } from "../../lib/agent/protocol.ts";
import { driftReport, FarmValidationError } from "../../lib/applier/index.ts";
import { targetLockFile } from "../../lib/applier/lock.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { ensureConsoleUser } from "../../lib/supervisor/console-user.ts";
import { acquireFlock } from "../../lib/sys/flock.ts";
import { forwardingProblems } from "../helpers/consistency.ts";
import { MIXED_FARMS } from "../helpers/farms.ts";
import { startAgent } from "../helpers/agent.ts";
import { createNetns, deleteAllNetns, iptablesSave } from "../helpers/netns.ts";

/**
 * The agent as the console meets it: a root process on a Unix socket that
 * only its group may open, refusing every request that is not one of its
 * typed operations (and changing nothing then), and whose death mid-apply
 * leaves the kernel consistent.
 */
const ROOT = path.join(import.meta.dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "natfarm.mjs");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-agent-"));
fs.chmodSync(dir, 0o755);
const socket = path.join(dir, "run", "agent.sock");
let ns: string;
let agent: ChildProcess | null = null;

const start = async () => (await startAgent({ socket, target: { kind: "netns", name: ns }, logFile: path.join(dir, "agent.log"), group: "natfarm", testHooks: false })).child;

beforeAll(async () => {
  ({ name: ns } = await createNetns("agt"));
  await ensureConsoleUser("natfarm", () => {});
  agent = await start();
});
afterAll(async () => {
  agent?.kill("SIGKILL");
  await deleteAllNetns();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes and reads one answer line. */
function raw(payload: string | Buffer): Promise<{ ok: boolean; error?: { kind: string; message: string } } | null> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(payload));
    conn.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl !== -1) {
        conn.destroy();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    conn.on("error", reject);
    conn.on("close", () => resolve(buf ? JSON.parse(buf) : null));
  });
}

const farm = (name: string, extra: Partial<FarmInput> = {}): FarmInput => ({
  name,
  vip: "198.51.100.250",
  ports: "80",
  protocol: "tcp",
  mode: "dnat",
  backends: [{ ip: "203.0.113.10", port: 80, weight: 1 }],
  ...extra,
});

describe("the agent's socket", () => {
  it("is root:natfarm 0660 in a 0750 directory: a user outside the group cannot connect, one in it can", async () => {
    const st = fs.statSync(socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.uid).toBe(0);
    const group = fs.readFileSync("/etc/group", "utf8").split("\n").find((l) => l.startsWith("natfarm:"))!;
    expect(st.gid).toBe(Number(group.split(":")[2]));
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).toBe(0o750);
    const probe = `require("net").connect(${JSON.stringify(socket)}).on("connect",()=>{console.log("connected");process.exit(0)}).on("error",(e)=>{console.log(e.code);process.exit(0)})`;
    const asUser = (user: string, group: string) => execa("setpriv", ["--reuid", user, "--regid", group, "--init-groups", "--", process.execPath, "-e", probe]);
    expect((await asUser("nobody", "nogroup")).stdout.trim()).toBe("EACCES");
    expect((await asUser("natfarm", "natfarm")).stdout.trim()).toBe("connected");
  });
});

describe("requests that are not the agent's operations are refused and change nothing", () => {
  const target = () => `netns:${ns}`;
  const corpus: [string, () => string | Buffer, RegExp][] = [
    ["not JSON", () => "rm -rf /\n", /not JSON/],
    ["no op", () => `${JSON.stringify({ id: 1, params: {} })}\n`, /bad request/],
    ["an unknown op", () => `${JSON.stringify({ id: 1, op: "exec", params: { program: "/bin/sh", args: ["-c", "id"] } })}\n`, /bad request/],
    ["a program name smuggled into apply", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: target(), farms: [], program: "iptables" } })}\n`, /bad request.*program/],
    ["rule text instead of farms", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: target(), farms: "-A PREROUTING -j ACCEPT" } })}\n`, /farms/],
    ["a target it does not serve", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: "host", farms: [farm("x")] } })}\n`, /does not serve target host/],
    ["a made-up target", () => `${JSON.stringify({ id: 1, op: "readTables", params: { target: "netns:../../etc" } })}\n`, /target/],
    ["a lab it does not run", () => `${JSON.stringify({ id: 1, op: "lab.down", params: { name: "other" } })}\n`, /does not run lab/],
    ["fault injection without test hooks", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: target(), farms: [farm("x")], injectFault: "nat" } })}\n`, /test hook/],
    ["a farm with shell metacharacters", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: target(), farms: [farm("x;reboot")] } })}\n`, /name/],
    ["a backend port that is not a number", () => `${JSON.stringify({ id: 1, op: "apply", params: { target: target(), farms: [farm("x", { backends: [{ ip: "203.0.113.10", port: "80; id" as never, weight: 1 }] })] } })}\n`, /port/],
    ["a mark outside natfarm's range", () => `${JSON.stringify({ id: 1, op: "cutConnections", params: { target: target(), mark: 1 } })}\n`, /mark/],
  ];
  it.each(corpus)("%s", async (_, payload, message) => {
    const before = await iptablesSave({ kind: "netns", name: ns });
    const r = await raw(payload());
    expect(r?.ok).toBe(false);
    expect(r?.error?.message).toMatch(message);
    expect(await iptablesSave({ kind: "netns", name: ns })).toBe(before);
  });

  it("an oversized request is refused and the connection closed", async () => {
    const before = await iptablesSave({ kind: "netns", name: ns });
    const r = await raw(Buffer.alloc(MAX_REQUEST_BYTES + 1024, "x"));
    expect(r?.error?.message).toMatch(/larger than/);
    expect(await iptablesSave({ kind: "netns", name: ns })).toBe(before);
    // and the agent still serves
    expect(await agentCall(socket, "ping", {})).toMatchObject({ protocol: 1 });
  });

  it("an invalid farm set comes back as the same FarmValidationError the direct path throws", async () => {
    const err = await agentKernel(socket).applyFarms([farm("a"), farm("b")], { target: { kind: "netns", name: ns } }).catch((e) => e);
    expect(err).toBeInstanceOf(FarmValidationError);
    expect((err as FarmValidationError).issues.join("\n")).toMatch(/overlap|198\.51\.100\.250/);
  });

  it("after a first whole set, a client sends only the farms that changed; the checks across farms still hold", async () => {
    const k = agentKernel(socket);
    const t = { kind: "netns" as const, name: ns };
    const a = farm("da", { vip: "198.51.100.61" });
    const b = farm("db", { vip: "198.51.100.62", backends: [{ ip: "203.0.113.10", port: 80, weight: 1 }, { ip: "203.0.113.11", port: 80, weight: 1 }] });
    await k.applyFarms([a, b], { target: t });
    // A weight change: sent as a delta of one farm, applied.
    const b2 = { ...b, backends: [{ ...b.backends![0]!, weight: 9 }, b.backends![1]!] };
    expect((await k.applyFarms([a, b2], { target: t })).farmsChanged).toEqual(["db"]);
    expect((await driftReport([a, b2], { target: t })).inSync).toBe(true);
    // A VIP change onto the other farm's address and port: the delta is checked across farms and refused.
    const clash = { ...b2, vip: "198.51.100.61" };
    const err = await k.applyFarms([a, clash], { target: t }).catch((e) => e);
    expect(err).toBeInstanceOf(FarmValidationError);
    expect((err as FarmValidationError).issues.join("\n")).toMatch(/overlaps farm "da"/);
    expect((await driftReport([a, b2], { target: t })).inSync).toBe(true);
    await k.applyFarms([], { target: t });
  });

  it("a valid change goes through and reads back through the agent", async () => {
    const k = agentKernel(socket);
    const t = { kind: "netns" as const, name: ns };
    const r = await k.applyFarms(MIXED_FARMS, { target: t });
    expect(r.changed).toBe(true);
    expect((await k.driftReport(MIXED_FARMS, { target: t })).inSync).toBe(true);
    const tables = await k.readTables(t);
    expect(tables.tables.map((x) => x.name)).toEqual(["mangle", "nat"]);
    await k.applyFarms([], { target: t });
  });
});

describe("the agent killed with -9 during a 5,000-farm apply", () => {
  it("leaves old or new rules forwarding consistently, the caller is told, and a restarted agent repairs", async () => {
    const t = { kind: "netns" as const, name: ns };
    const make = (shift: number) =>
      Array.from({ length: 5000 }, (_, i): FarmInput => ({
        name: `k${i}`,
        vip: `198.51.100.${1 + (i % 250)}`,
        ports: String(2000 + Math.floor(i / 250)),
        protocol: "tcp",
        mode: (i + shift) % 2 ? "nat" : "dnat",
        backends: [0, 1].map((b) => ({ ip: `203.0.113.${10 + b + shift}`, port: 80, weight: 1 + b, mark: `0x${(0x1000 + i * 2 + b).toString(16)}` })),
      }));
    const [a, b] = [make(0), make(1)];
    const k = agentKernel(socket);
    await k.applyFarms(a, { target: t });
    const defs = new Map<number, { dest: string; snat: boolean }[]>();
    for (const set of [a, b]) for (const f of set) for (const be of f.backends!) defs.set(Number(be.mark), [...(defs.get(Number(be.mark)) ?? []), { dest: `${be.ip}:${be.port}`, snat: f.mode === "nat" }]);

    const pending = k.applyFarms(b, { target: t }).then(() => null, (e) => e);
    // Let it get into the restore (validation and planning take a good part of a second here).
    await new Promise((r) => setTimeout(r, 1200));
    agent!.kill("SIGKILL");
    const err = await pending;
    const lock = await acquireFlock(targetLockFile(t), { timeoutMs: 120_000, what: "agent test" });
    lock.release();
    const [mangle, nat] = await Promise.all([iptablesSave(t, "mangle"), iptablesSave(t, "nat")]);
    expect(forwardingProblems(mangle, nat, defs).slice(0, 5)).toEqual([]);
    // The apply may have finished just before the kill; otherwise the caller learns the agent went away.
    if (err) expect(err).toBeInstanceOf(AgentUnavailableError);
    await expect(k.readTables(t)).rejects.toBeInstanceOf(AgentUnavailableError);

    agent = await start();
    await k.applyFarms(b, { target: t });
    expect((await driftReport(b, { target: t })).inSync).toBe(true);
  }, 300_000);
});
