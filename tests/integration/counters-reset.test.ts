import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentHandler } from "../../lib/agent/server.ts";
import type { TablesSnapshot } from "../../lib/applier/tables.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import { withEngine, type Engine } from "../../lib/kernel/index.ts";
import { labEnsureVip, labTraffic } from "../../lib/lab/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { parseTarget, type Target } from "../../lib/privileged/target.ts";
import { advance, countersOf, type FarmCount } from "../../lib/service/traffic-counters.ts";
import { resetCounters } from "../../lib/service/counters-reset.ts";
import { labFarm } from "../helpers/farms.ts";
import { useLab } from "../helpers/lab.ts";
import { iptables } from "../helpers/netns.ts";

/**
 * "Reset counters" on real netfilter, both engines, in one lab: natfarm's
 * own counters go to 0 (one farm's, or all of them), other software's —
 * a foreign iptables chain, foreign rules in the built-in chains, a foreign
 * nftables table — and natfarm's jumps from the built-in chains stay byte
 * for byte; traffic is still balanced afterwards; a refused reset changes
 * nothing; bad requests to the agent change nothing; the traffic sampler's
 * totals go on without a negative step or a jump.
 */
const lab = useLab({ backends: 3, ports: [80] });
const target = (): Target => parseTarget(lab.info.target);
const A = labFarm("ca", "198.51.100.61", 80, [1, 1, 1], "dnat");
const B = labFarm("cb", "198.51.100.62", 80, [1, 1], "nat");
beforeAll(() => addForeign(target()));
/** With counters: what a reset may or may not change. */
const saveC = async (t: Target) =>
  (await runPrivileged("iptables-save", ["-c"], { target: t })).stdout
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");

async function send(vip: string, connections: number) {
  await labEnsureVip({ name: lab.name, vip });
  const r = await labTraffic({ name: lab.name, vip, port: 80, connections, concurrency: 32 });
  expect(r.failed, JSON.stringify(r.errors)).toBe(0);
  return r;
}

/** Other software's counters in the load balancer: a chain of its own, rules beside natfarm's jumps, an nftables table. */
async function addForeign(t: Target) {
  await iptables(t, ["-t", "mangle", "-N", "FOREIGN-COUNT"]);
  await iptables(t, ["-t", "mangle", "-A", "FOREIGN-COUNT", "-p", "tcp", "-m", "comment", "--comment", "foreign chain"]);
  await iptables(t, ["-t", "mangle", "-A", "PREROUTING", "-j", "FOREIGN-COUNT"]);
  await runPrivileged("nft", ["-f", "-"], { target: t, input: "table ip foreign {\n chain c {\n  type filter hook prerouting priority -300; policy accept;\n  ip protocol tcp counter\n }\n}\n" });
}

/** Every line of the save that is not natfarm's chains: foreign chains and rules, and the built-in chains with natfarm's jumps. */
async function foreignState(t: Target): Promise<string> {
  const save = (await saveC(t)).split("\n").filter((l) => !l.startsWith("#") && !/^(\[\d+:\d+\] )?-A NATFARM-/.test(l) && !l.startsWith(":NATFARM-"));
  const { stdout } = await runPrivileged("nft", ["list", "table", "ip", "foreign"], { target: t });
  return `${save.join("\n")}\n${stdout}`;
}

/** natfarm's own rules (or elements) with their counters, per farm; hooks from built-in chains left out. */
function natfarmCounts(snap: TablesSnapshot): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const t of snap.tables) {
    for (const c of t.chains) {
      if (!c.owned) continue;
      for (const r of c.rules) {
        const key = r.farm ?? "(shared)";
        out.set(key, [...(out.get(key) ?? []), r.packets]);
      }
    }
  }
  return out;
}
const total = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);

describe.each(["iptables", "nftables"] as Engine[])("reset counters on %s", (engine) => {
  const k = withEngine(directKernel, engine);
  const read = () => k.readTables(target());
  const kernelText = async () => (engine === "iptables" ? saveC(target()) : (await runPrivileged("nft", ["-j", "list", "table", "ip", "natfarm"], { target: target() })).stdout);

  it("zeroes one farm's counters, then all of natfarm's, and nobody else's", async () => {
    const t = target();
    await k.applyFarms([A, B], { target: t });
    // Ahead of natfarm's jump (whose DNAT ends the walk), so it counts too.
    if (!(await saveC(t)).includes('"foreign rule"')) await iptables(t, ["-t", "nat", "-I", "PREROUTING", "-p", "tcp", "-m", "comment", "--comment", "foreign rule"]);
    await send(A.vip, 300);
    await send(B.vip, 200);
    const before = natfarmCounts(await read());
    expect(total(before.get("ca"))).toBeGreaterThan(0);
    expect(total(before.get("cb"))).toBeGreaterThan(0);
    const foreign = await foreignState(t);
    expect(foreign).toMatch(/\[[1-9]\d*:\d+\] -A FOREIGN-COUNT/);
    expect(foreign).toMatch(/\[[1-9]\d*:\d+\] -A PREROUTING -p tcp -m comment --comment "foreign rule"/);
    expect(foreign).toMatch(/counter packets [1-9]/);

    const one = await k.resetCounters(t, { farm: "ca" });
    expect(one).toMatchObject({ engine, scope: { farm: "ca" } });
    expect(one.counters).toBeGreaterThan(0);
    const afterOne = natfarmCounts(await read());
    expect(total(afterOne.get("ca"))).toBe(0);
    expect(afterOne.get("cb")).toEqual(before.get("cb"));
    expect(await foreignState(t)).toBe(foreign);

    const all = await k.resetCounters(t);
    expect(all.scope.farm).toBeNull();
    const afterAll = natfarmCounts(await read());
    for (const [farm, counts] of afterAll) expect(total(counts), farm).toBe(0);
    expect(await foreignState(t)).toBe(foreign);
    if (engine === "iptables") {
      // The jumps from the built-in chains kept their counts: they are in the foreign state compared above.
      expect(foreign).toMatch(/\[[1-9]\d*:\d+\] -A PREROUTING .*-j NATFARM-PREROUTING/);
    }

    // Still balanced, and counted from 0.
    const r = await send(A.vip, 90);
    expect(Object.values(r.backends).map((b) => b.count).sort()).toHaveLength(3);
    for (const b of Object.values(r.backends)) expect(b.count).toBeGreaterThan(10);
    const counted = countersOf(await read()).filter((c) => c.farm === "ca");
    expect(counted.reduce((a, c) => a + c.packets, 0)).toBe(90);
  });

  it("keeps the traffic graph's totals across a reset: no negative step, no jump", async () => {
    const t = target();
    await k.applyFarms([A, B], { target: t });
    await send(A.vip, 150);
    let counts: Map<string, FarmCount> = advance(new Map(), countersOf(await read()), 1);
    const start = counts.get("ca")!.connections;
    await send(A.vip, 150);
    counts = advance(counts, countersOf(await read()), 2);
    expect(counts.get("ca")!.connections).toBe(start + 150);
    await k.resetCounters(t, { farm: "ca" });
    counts = advance(counts, countersOf(await read()), 3);
    expect(counts.get("ca")!.connections).toBe(start + 150);
    await send(A.vip, 60);
    counts = advance(counts, countersOf(await read()), 4);
    expect(counts.get("ca")!.connections).toBe(start + 210);
  });

  it("an injected failure resets nothing", async () => {
    const t = target();
    await k.applyFarms([A, B], { target: t });
    await send(A.vip, 60);
    const before = await kernelText();
    await expect(k.resetCounters(t, { injectFault: true })).rejects.toThrow(/no counter was reset/);
    expect(await kernelText()).toBe(before);
  });

  it("the agent refuses bad requests and changes nothing; the service refuses a bad farm name", async () => {
    const t = target();
    await k.applyFarms([A, B], { target: t });
    await send(B.vip, 40);
    const before = await kernelText();
    const handle = createAgentHandler({ targets: [t], labs: [], testHooks: false });
    const tt = `netns:${lab.info.lbNs}`;
    const cases: [object, RegExp][] = [
      [{ target: tt, engine, farm: "no such; farm" }, /farm names hold only/],
      [{ target: tt, engine, farm: 7 }, /farm/],
      [{ target: tt, engine, everything: true }, /everything|unrecognized/i],
      [{ target: tt, engine: "ipvs" }, /engine must be/],
      [{ target: "netns:someone-else", engine }, /does not serve/],
      [{ target: tt, engine, injectFault: true }, /test hook/],
    ];
    for (const [params, why] of cases) {
      const a = await handle(JSON.stringify({ id: 1, op: "resetCounters", params }));
      expect(a.ok, JSON.stringify(params)).toBe(false);
      if (!a.ok) expect(a.error.message).toMatch(why);
    }
    const bad = await resetCounters({ kernel: k, target: t }, { farm: "../x" });
    expect(bad).toMatchObject({ ok: false, reason: "invalid" });
    expect(await resetCounters({ kernel: k, target: t, farmExists: async () => false }, { farm: "ghost" })).toMatchObject({ ok: false, reason: "not-found" });
    expect(await resetCounters({ kernel: k, target: null }, {})).toMatchObject({ ok: false, reason: "disabled" });
    expect(await kernelText()).toBe(before);
    const ok = await resetCounters({ kernel: k, target: t }, { farm: "cb" });
    expect(ok).toMatchObject({ ok: true, engine });
    if (ok.ok) expect(ok.message).toMatch(/Reset farm cb's counters to 0: .*Other software's counters/);
  });
});

describe("natfarm counters reset (the CLI)", () => {
  const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-counters-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Its own database (for the audit entry) and no agent: the CLI as root resets directly.
  const env = { NATFARM_DATABASE_URL: `file:${path.join(dir, "cli.db")}`, NATFARM_AGENT_SOCKET: "", NATFARM_TARGET: "none" };
  const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false, env });

  it("refuses bad input with exit 2 and resets nothing; resets one farm's counters and says so; audited", async () => {
    const t = target();
    await directKernel.applyFarms([A, B], { target: t });
    await send(A.vip, 60);
    await send(B.vip, 40);
    const before = await saveC(t);
    for (const args of [
      ["--farm", "a;reboot", "-t", lab.info.target],
      ["--farm", "x".repeat(200), "-t", lab.info.target],
      ["--engine", "ipvs", "-t", lab.info.target],
      ["-t", "netns:bad name"],
      ["--everything", "-t", lab.info.target],
      [],
    ]) {
      const r = await natfarm("counters", "reset", ...args);
      expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/\S/);
    }
    expect(await saveC(t)).toBe(before);
    const r = await natfarm("counters", "reset", "--farm", "cb", "-t", lab.info.target, "--engine", "iptables");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Reset farm cb's counters to 0: \d+ rules.*which had counted [1-9][\d,]* packets/);
    const after = natfarmCounts(await directKernel.readTables(t));
    expect(total(after.get("cb"))).toBe(0);
    expect(total(after.get("ca"))).toBeGreaterThan(0);
    const { getPrisma, disconnectPrisma } = await import("../../lib/db/client.ts");
    const rows = await getPrisma(env.NATFARM_DATABASE_URL).auditEntry.findMany({ where: { action: "reset counters" } });
    await disconnectPrisma(env.NATFARM_DATABASE_URL);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ via: "cli", farm: "cb", result: "ok" });
    expect(rows[0]!.actor).toMatch(/^cli \(/);
  });
});
