import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { AgentRequestSchema } from "../../lib/agent/protocol.ts";
import { main } from "../../lib/cli/main.ts";
import { ConsoleEnvError, parseConsoleEnv } from "../../lib/console/env.ts";
import { farmView } from "../../lib/console/farm-view.ts";
import { engineFromEnv } from "../../lib/kernel/engine.ts";
import { withEngine, type KernelPort } from "../../lib/kernel/port.ts";
import { rowToResolved, type FarmRow } from "../../lib/service/farm-rows.ts";
import { ruleChange } from "../../lib/service/farm-change.ts";
import { guideFarm } from "../helpers/farms.ts";

/** The engine choice at every boundary: the environment, the CLI, the agent's protocol, the kernel port's default. */
describe("NATFARM_ENGINE", () => {
  it("is iptables when unset or blank, nftables when asked, and a clear start-up error otherwise", () => {
    expect(parseConsoleEnv({}, true).engine).toBe("iptables");
    expect(parseConsoleEnv({ NATFARM_ENGINE: "  " }, true).engine).toBe("iptables");
    const nft = parseConsoleEnv({ NATFARM_ENGINE: "nftables", NATFARM_TARGET: "netns:lb1" }, true);
    expect(nft.engine).toBe("nftables");
    // The header reads it from the target.
    expect(nft.target.engine).toBe("nftables");
    const e = (() => {
      try {
        parseConsoleEnv({ NATFARM_ENGINE: "ipvs" }, true);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ConsoleEnvError);
    expect((e as Error).message).toContain('NATFARM_ENGINE must be "iptables" or "nftables", got "ipvs"');
    expect(() => engineFromEnv({ NATFARM_ENGINE: "NFTABLES" })).toThrow(/NATFARM_ENGINE must be/);
    expect(engineFromEnv({ NATFARM_ENGINE: "nftables" })).toBe("nftables");
  });
});

describe("the kernel port's engine", () => {
  function recording() {
    const calls: [string, unknown][] = [];
    const rec = (name: string) => async (...a: unknown[]) => {
      calls.push([name, a[a.length - 1]]);
      return name === "driftOfFarms" ? new Map() : ({} as never);
    };
    const port = {
      via: "direct",
      applyFarms: rec("applyFarms"),
      driftReport: rec("driftReport"),
      driftOfFarm: rec("driftOfFarm"),
      driftOfFarms: rec("driftOfFarms"),
      readTables: rec("readTables"),
      readNatfarmTables: rec("readNatfarmTables"),
      connectionStats: rec("connectionStats"),
      cutConnections: rec("cutConnections"),
      checkLocalVips: rec("checkLocalVips"),
      ping: rec("ping"),
      lab: {} as KernelPort["lab"],
    } as unknown as KernelPort;
    return { port, calls };
  }

  it("withEngine gives every rule operation its engine unless the call names one", async () => {
    const { port, calls } = recording();
    const k = withEngine(port, "nftables");
    const target = { kind: "netns", name: "x" } as const;
    await k.applyFarms([], { target, only: ["a"] });
    await k.applyFarms([], { target, engine: "iptables" });
    await k.driftReport([], { target });
    await k.driftOfFarm(target, {} as never);
    await k.driftOfFarms(target, []);
    await k.readTables(target);
    await k.readNatfarmTables(target, { farm: "a" });
    expect(calls.map(([n, o]) => [n, (o as { engine?: string }).engine])).toEqual([
      ["applyFarms", "nftables"],
      ["applyFarms", "iptables"],
      ["driftReport", "nftables"],
      ["driftOfFarm", "nftables"],
      ["driftOfFarms", "nftables"],
      ["readTables", "nftables"],
      ["readNatfarmTables", "nftables"],
    ]);
    expect(calls[0]![1]).toEqual({ target, only: ["a"], engine: "nftables" });
    expect(calls[6]![1]).toEqual({ farm: "a", engine: "nftables" });
    expect(k.engine).toBe("nftables");
  });
});

describe("the agent's protocol", () => {
  const req = (op: string, params: object) => AgentRequestSchema.safeParse({ id: 1, op, params });
  it("takes an engine on apply, drift and table reads, and refuses any other value", () => {
    for (const op of ["readTables", "readNatfarmTables"]) expect(req(op, { target: "netns:x", engine: "nftables" }).success).toBe(true);
    expect(req("apply", { target: "netns:x", engine: "nftables", farms: [] }).success).toBe(true);
    expect(req("driftReport", { target: "netns:x", engine: "iptables", farms: [] }).success).toBe(true);
    expect(req("apply", { target: "netns:x", farms: [] }).success).toBe(true);
    const bad = req("apply", { target: "netns:x", engine: "ipvs", farms: [] });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('engine must be \\"iptables\\" or \\"nftables\\"');
    // Operations that do not depend on the engine take none.
    expect(req("connectionStats", { target: "netns:x", engine: "nftables" }).success).toBe(false);
  });
});

describe("natfarm --engine", () => {
  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
    try {
      return { code: await main(["node", "natfarm", ...argv]), out, err };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-engine-")), "farms.json");
  fs.writeFileSync(file, JSON.stringify({ farms: [guideFarm("nat")] }));

  it("render prints the nft table with --engine nftables and the iptables payload without", async () => {
    const nft = await run(["render", "--engine", "nftables", "-f", file]);
    expect(nft.code).toBe(0);
    expect(nft.out).toContain("table ip natfarm {");
    expect(nft.out).toContain('comment "FARM_app_0_" : 192.168.1.10 . 443');
    const ipt = await run(["render", "-f", file]);
    expect(ipt.out).toContain("-j DNAT --to-destination 192.168.1.10:443");
  });

  it("an unknown engine is bad input (exit 2) before anything runs, on every command that has the option", async () => {
    for (const cmd of [["render", "-f", file], ["apply", "-f", file, "-t", "netns:nope"], ["diff", "-f", file, "-t", "netns:nope"], ["tables", "-t", "netns:nope"], ["flush", "-t", "netns:nope"], ["restore", "-t", "netns:nope"]]) {
      const r = await run([...cmd, "--engine", "pf"]);
      expect(r.code, cmd.join(" ")).toBe(2);
      expect(r.err).toContain('--engine must be "iptables" or "nftables", got "pf"');
    }
  });

  it("a NATFARM_ENGINE that names no engine is bad input too (exit 2), also for commands without the option", async () => {
    const saved = process.env.NATFARM_ENGINE;
    process.env.NATFARM_ENGINE = "bogus";
    try {
      for (const cmd of [["tables", "-t", "netns:nope"], ["render", "-f", file]]) {
        const r = await run(cmd);
        expect(r.code, cmd.join(" ")).toBe(2);
        expect(r.err).toContain('NATFARM_ENGINE must be "iptables" or "nftables", got "bogus"');
      }
    } finally {
      if (saved === undefined) delete process.env.NATFARM_ENGINE;
      else process.env.NATFARM_ENGINE = saved;
    }
  });
});

describe("the farm page's generated rules", () => {
  it("are nft commands on nftables and iptables-restore lines otherwise", () => {
    const row = {
      name: "app", vip: "192.168.101.250", ports: "443", protocol: "tcp", mode: "nat", scheduler: "weight", status: "up", persistence: "none", persistenceTtl: 120, healthcheck: null,
      backends: [0, 1].map((i) => ({ position: i, ip: `192.168.1.1${i}`, port: 443, weight: 1, priority: 1, state: "up", mark: 0x20c + i, healthDetail: null, healthAt: null })),
    } as unknown as FarmRow;
    const nft = farmView(row, "nftables");
    expect(nft.rules).toContain("add chain ip natfarm farm_app");
    expect(nft.rules).toContain("add element ip natfarm snat_vip { 0x20c comment \"FARM_app_0_\" : 192.168.101.250 }");
    expect(nft.modeDiff.some((l) => l.text?.includes("snat_vip"))).toBe(true);
    expect(farmView(row).rules).toContain("-j SNAT --to-source 192.168.101.250");
  });

  it("a change's toast counts the same nft lines as the NAT-type preview on nftables", () => {
    const row = {
      name: "app", vip: "192.168.101.250", ports: "443", protocol: "tcp", mode: "nat", scheduler: "weight", status: "up", persistence: "none", persistenceTtl: 120, healthcheck: null,
      backends: [0, 1].map((i) => ({ position: i, ip: `192.168.1.1${i}`, port: 443, weight: 1, priority: 1, state: "up", mark: 0x20c + i, healthDetail: null, healthAt: null })),
    } as unknown as FarmRow;
    const nat = rowToResolved(row);
    const dnat = { ...nat, mode: "dnat" as const };
    const preview = farmView(row, "nftables").modeDiff;
    // nat → dnat drops the two snat_vip elements, and nothing else.
    expect(ruleChange(nat, dnat, "nftables")).toEqual({ added: 0, removed: 2 });
    expect(preview.filter((l) => l.kind === "removed").length).toBe(2);
    expect(preview.filter((l) => l.kind === "added").length).toBe(0);
    // A re-weight: nft rewrites the farm's slot elements that move (and the draw's modulus), iptables the MARK probabilities:
    // 1:1 → 3:1 is slot 1 from b1 to b0, slots 2 (b0) and 3 (b1) added, and the rule's "mod 2" → "mod 4".
    const heavier = { ...nat, backends: nat.backends.map((b, i) => ({ ...b, weight: i === 0 ? 3 : 1 })) };
    expect(ruleChange(nat, heavier, "nftables")).toEqual({ added: 4, removed: 2 });
  });
});
