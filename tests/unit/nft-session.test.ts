import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { applyNftValidated, forgetRemembered, NftApplyError, readNft } from "../../lib/nftables/apply.ts";
import { payloadOf, planNft } from "../../lib/nftables/plan.ts";
import { renderNft } from "../../lib/nftables/render.ts";
import { parseNftJson } from "../../lib/nftables/json.ts";
import { NftSessions, NftSessionUnavailable, type NftSession, type NftSessionFactory } from "../../lib/nftables/session.ts";
import { PrivilegedCommandError, type Runner } from "../../lib/privileged/run.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { FakeNft, fakeNftRunner } from "../helpers/fake-nft.ts";
import { guideFarm, MIXED_FARMS } from "../helpers/farms.ts";

process.env.NATFARM_LOCK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-session-locks-"));

/**
 * The session pool without a kernel: each "session" is a FakeNft of its
 * own (one per namespace, as each worker thread is in one), so what the
 * pool routes where, and what the applier gets back, can be checked.
 */
function fakeSessions(o: { identity?: (t: Target) => string | null; unavailable?: boolean } = {}) {
  const kernels = new Map<string, FakeNft>();
  const opened: string[] = [];
  const closed: string[] = [];
  const fallbackCalls: string[] = [];
  const served: { target: string; via: string; reason?: string }[] = [];
  const sessionsByKey = new Map<string, { alive: boolean }>();
  const factory: NftSessionFactory = async (target) => {
    const key = target.kind === "host" ? "host" : target.name;
    if (o.unavailable) throw new NftSessionUnavailable("libnftables.so.1 cannot be loaded: test");
    const id = `${key}#${opened.length}`;
    opened.push(id);
    if (!kernels.has(id)) kernels.set(id, new FakeNft());
    const k = kernels.get(id)!;
    const state = { alive: true };
    sessionsByKey.set(id, state);
    const s: NftSession = {
      get alive() {
        return state.alive;
      },
      async run(text, opts) {
        if (opts.json) {
          const out = k.json();
          return out ? { rc: 0, out, err: "" } : { rc: 1, out: "", err: "Error: No such file or directory\nlist table ip natfarm\n" };
        }
        k.payloads.push(text);
        try {
          k.apply(text);
          return { rc: 0, out: "", err: "" };
        } catch (e) {
          return { rc: 1, out: "", err: `/dev/stdin:1:1-1: ${(e as Error).message}\n` };
        }
      },
      async close() {
        state.alive = false;
        closed.push(id);
      },
    };
    return s;
  };
  const fallback: Runner = async (program, args) => {
    fallbackCalls.push(`${program} ${args.join(" ")}`);
    if (program === "ip") return { stdout: "[]", stderr: "", exitCode: 0 };
    return { stdout: "", stderr: "", exitCode: 0 };
  };
  const pool = new NftSessions({ factory, fallback, identity: o.identity ?? ((t) => (t.kind === "host" ? "host" : `ino-${t.name}`)), onServe: (e) => served.push(e) });
  return { pool, kernels, opened, closed, fallbackCalls, served, sessionsByKey };
}

const A: Target = { kind: "netns", name: "ns-a" };
const B: Target = { kind: "netns", name: "ns-b" };
const farms = (list: Parameters<typeof FarmListSchema.parse>[0]) => resolveMarks(FarmListSchema.parse(list));

describe("nft sessions: what goes through them", () => {
  it("serves `nft -f -` and `nft -j list table ip natfarm` per target, and sends everything else to the fallback", async () => {
    const f = fakeSessions();
    const r = await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    expect(r).toEqual({ stdout: "", stderr: "", exitCode: 0 });
    expect((await f.pool.run("nft", ["-j", "list", "table", "ip", "natfarm"], { target: A })).stdout).toContain('"natfarm"');
    await f.pool.run("nft", ["-s", "list", "ruleset"], { target: A });
    await f.pool.run("ip", ["-j", "-4", "addr", "show"], { target: A });
    await f.pool.run("conntrack", ["-D", "--mark", "0x200"], { target: A });
    expect(f.fallbackCalls).toEqual(["nft -s list ruleset", "ip -j -4 addr show", "conntrack -D --mark 0x200"]);
    // One session for A, reused.
    expect(f.opened).toEqual(["ns-a#0"]);
    expect(f.served).toEqual([{ target: "netns:ns-a", via: "libnftables" }]);
  });

  it("keeps each namespace's session apart: a write to one never reaches the other", async () => {
    const f = fakeSessions();
    await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    const listB = await f.pool.run("nft", ["-j", "list", "table", "ip", "natfarm"], { target: B, allowFailure: true });
    expect(listB.exitCode).toBe(1);
    expect(listB.stderr).toMatch(/No such file or directory/);
    expect(f.opened).toEqual(["ns-a#0", "ns-b#1"]);
  });

  it("gives nft's failure back as nft -f does: the exit code and its message; without allowFailure it throws as runPrivileged does", async () => {
    const f = fakeSessions();
    const bad = await f.pool.run("nft", ["-f", "-"], { target: A, input: "add chain ip natfarm x\n", allowFailure: true });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/^\/dev\/stdin:1:1-1: Error: No such file or directory/);
    await expect(f.pool.run("nft", ["-f", "-"], { target: A, input: "add chain ip natfarm x\n" })).rejects.toBeInstanceOf(PrivilegedCommandError);
  });

  it("without the library, every call runs through the fallback and the pool says why, once", async () => {
    const f = fakeSessions({ unavailable: true });
    await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    await f.pool.run("nft", ["-f", "-"], { target: B, input: "table ip natfarm {\n}\n" });
    expect(f.fallbackCalls).toEqual(["nft -f -", "nft -f -"]);
    expect(f.pool.unavailableReason).toMatch(/libnftables/);
    expect(f.served).toEqual([{ target: "netns:ns-a", via: "nft -f", reason: "libnftables.so.1 cannot be loaded: test" }]);
  });

  it("a namespace deleted and made again under its name gets a new session (the old one is closed); a missing one is refused as ip netns exec refuses it", async () => {
    let ino = "1";
    const f = fakeSessions({ identity: (t) => (t.kind === "host" ? "host" : ino === "gone" ? null : `ino-${ino}`) });
    await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    ino = "2";
    const list = await f.pool.run("nft", ["-j", "list", "table", "ip", "natfarm"], { target: A, allowFailure: true });
    expect(list.exitCode).toBe(1); // the new namespace holds no table: the old session's kernel was not asked
    expect(f.opened).toEqual(["ns-a#0", "ns-a#1"]);
    await new Promise((r) => setTimeout(r, 0));
    expect(f.closed).toEqual(["ns-a#0"]);
    ino = "gone";
    const r = await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n", allowFailure: true });
    expect(r).toEqual({ stdout: "", stderr: 'Cannot open network namespace "ns-a": No such file or directory\n', exitCode: 1 });
    expect(f.fallbackCalls).toEqual([]);
    // The sweep closes a session whose namespace went away, even when no call comes.
    ino = "3";
    await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    ino = "gone";
    f.pool.sweep();
    await new Promise((r) => setTimeout(r, 0));
    expect(f.closed).toEqual(["ns-a#0", "ns-a#1", "ns-a#2"]);
  });

  it("a session that ended is replaced by a new one at the next call", async () => {
    const f = fakeSessions();
    await f.pool.run("nft", ["-f", "-"], { target: A, input: "table ip natfarm {\n}\n" });
    f.sessionsByKey.get("ns-a#0")!.alive = false;
    await f.pool.run("nft", ["-j", "list", "table", "ip", "natfarm"], { target: A, allowFailure: true });
    expect(f.opened).toEqual(["ns-a#0", "ns-a#1"]);
  });
});

describe("nft sessions: the applier through them", () => {
  it("applies, changes one farm from memory, and a refused transaction leaves the table as it was with nft's message", async () => {
    forgetRemembered();
    const f = fakeSessions();
    const run = f.pool.run;
    const set = farms([guideFarm("nat"), ...MIXED_FARMS]);
    const full = await applyNftValidated(set, { target: A, runner: run });
    expect(full.changed).toBe(true);
    const kernel = f.kernels.get("ns-a#0")!;
    const reweighted = set.map((x) => (x.name === "app" ? { ...x, backends: x.backends.map((b, i) => ({ ...b, weight: i === 0 ? 3 : 1 })) } : x));
    const scoped = await applyNftValidated(reweighted, { target: A, runner: run, only: ["app"] });
    expect(scoped.planned).toBe("remembered");
    expect(scoped.farmsChanged).toEqual(["app"]);
    // Only app's chain and elements, and the stamp.
    expect(scoped.payload).toContain("flush chain ip natfarm farm_app\n");
    expect(scoped.payload).not.toMatch(/farm_(?!app)|FARM_(?!app_)/);
    const before = kernel.json();
    const err = await applyNftValidated(set, { target: A, runner: run, only: ["app"], injectFault: true }).catch((e) => e);
    expect(err).toBeInstanceOf(NftApplyError);
    expect((err as Error).message).toMatch(/^nft rejected the change: \/dev\/stdin:1:1-1: Error: .*natfarm_injected_fault/s);
    expect(kernel.json()).toBe(before);
    // The live read goes through the session too and matches the remembered state.
    const live = await readNft(A, 5000, run);
    expect(live.chains.get("farm_app")!.rules[0]!.text).toContain("numgen random mod 4");
    expect(f.fallbackCalls.every((c) => c.startsWith("ip "))).toBe(true);
  });

  it("a scoped change planned from the changed farms alone writes what a plan against the whole table writes", async () => {
    const base = farms([guideFarm("nat"), ...MIXED_FARMS]);
    const app = base.find((f) => f.name === "app")!;
    const changes: [string, typeof base][] = [
      ["weight", base.map((f) => (f.name === "app" ? { ...f, backends: f.backends.map((b, i) => ({ ...b, weight: i + 2 })) } : f))],
      ["backend added", base.map((f) => (f.name === "app" ? { ...f, backends: [...f.backends, { ...f.backends[0]!, ip: "192.168.1.12", mark: 0x7f0 }] } : f))],
      ["mode", base.map((f) => (f.name === "app" ? { ...f, mode: "dnat" as const } : f))],
      ["ports", base.map((f) => (f.name === "app" ? { ...f, ports: "444" } : f))],
      ["stopped", base.map((f) => (f.name === "app" ? { ...f, status: "stopped" as const } : f))],
      ["removed", base.filter((f) => f.name !== "app")],
      ["added", [...base, { ...app, name: "app2", vip: "198.51.100.77", backends: app.backends.map((b, i) => ({ ...b, mark: 0x7e0 + i })) }]],
    ];
    for (const [what, next] of changes) {
      forgetRemembered();
      const k = new FakeNft();
      const run = fakeNftRunner(k).run;
      await applyNftValidated(base, { target: A, runner: run });
      const only = what === "added" ? ["app2"] : ["app"];
      const live = parseNftJson(k.json());
      const whole = planNft(renderNft(next), live, { only: new Set(only) });
      const r = await applyNftValidated(next, { target: A, runner: run, only });
      expect(r.planned, what).toBe("remembered");
      const strip = (p: string) => p.split("\n").filter((l) => !l.includes(" stamp ")).join("\n");
      expect(strip(r.payload), what).toBe(strip(payloadOf(whole, { old: null, next: 1 })));
      // And what it remembers is what the kernel now holds: the next full apply writes nothing.
      forgetRemembered();
      expect((await applyNftValidated(next, { target: A, runner: run })).changed, what).toBe(false);
    }
  });
});
