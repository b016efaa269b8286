import { describe, expect, it } from "vitest";
import { connectionStats, cutConnections } from "../../lib/applier/index.ts";
import { applyFarms } from "../helpers/engine.ts";
import { labEnsureVip, labHold, labTraffic } from "../../lib/lab/index.ts";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { parseTarget } from "../../lib/privileged/target.ts";
import { useLab } from "../helpers/lab.ts";
import { until } from "../helpers/until.ts";

/** Backend maintenance (drain and cut) and connection statistics, with held connections. */
const lab = useLab({ backends: 3, ports: [80] });
const target = () => parseTarget(lab.info.target);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * The held connection is in conntrack with its backend's mark: only then is
 * it an open connection the change must keep (a guessed sleep raced the
 * hold's client on a loaded machine once changes took milliseconds).
 */
const heldOn = (mark: number) =>
  until(`the held connection on mark 0x${mark.toString(16)}`, 20_000, async () => ((await connectionStats(target())).byMark.get(mark)?.established ?? 0) >= 1);

function farm(name: string, vip: string, states: ("up" | "maintenance")[]): FarmInput {
  return {
    name,
    vip,
    ports: "80",
    protocol: "tcp",
    mode: "nat",
    backends: states.map((state, i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x400 + i + (vip.endsWith("61") ? 8 : 0), state })),
  };
}

describe("backend maintenance", () => {
  it("drain: an open connection to the drained backend keeps working, new ones avoid it", async () => {
    const vip = "198.51.100.60";
    await labEnsureVip({ name: lab.name, vip });
    await applyFarms([farm("drain", vip, ["up", "maintenance"])], { target: target() });
    const held = labHold({ name: lab.name, vip, port: 80, durationMs: 2500, intervalMs: 100 });
    await heldOn(farm("drain", vip, ["up"]).backends![0]!.mark as number);
    await applyFarms([farm("drain", vip, ["maintenance", "up"])], { target: target(), only: ["drain"] });
    const fresh = await labTraffic({ name: lab.name, vip, port: 80, connections: 50 });
    expect(Object.keys(fresh.backends)).toEqual(["b1"]);
    const h = await held;
    expect(Object.keys(h.backends)).toEqual(["b0"]);
    expect(h.closedBy).toBe("client");
    expect(h.failed).toBe(0);
    expect(h.received).toBe(h.sent);
  });

  it("cut: the connection to the cut backend ends", async () => {
    const vip = "198.51.100.61";
    await labEnsureVip({ name: lab.name, vip });
    const before = farm("cut", vip, ["up", "maintenance"]);
    await applyFarms([before], { target: target() });
    const held = labHold({ name: lab.name, vip, port: 80, durationMs: 3000, intervalMs: 100 });
    await heldOn(before.backends![0]!.mark as number);
    await applyFarms([farm("cut", vip, ["maintenance", "up"])], { target: target(), only: ["cut"] });
    expect(await cutConnections(target(), before.backends![0]!.mark as number)).toBeGreaterThanOrEqual(1);
    const h = await held;
    expect(Object.keys(h.backends)).toEqual(["b0"]);
    const broken = h.closedBy !== "client" || h.received < h.sent || h.failed > 0;
    expect(broken, JSON.stringify(h)).toBe(true);
  });
});

describe("connection statistics", () => {
  it("equal conntrack's own count per backend mark at the same moment", async () => {
    const vip = "198.51.100.62";
    await labEnsureVip({ name: lab.name, vip });
    const f: FarmInput = { name: "stats", vip, ports: "80", protocol: "tcp", mode: "dnat", scheduler: "roundrobin", backends: [0, 1, 2].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x500 + i })) };
    await applyFarms([f], { target: target() });
    const holds = Array.from({ length: 6 }, () => labHold({ name: lab.name, vip, port: 80, durationMs: 2500, intervalMs: 200 }));
    try {
      // Each hold is a client process of its own: on a loaded machine they take a while to connect.
      for (let end = Date.now() + 8000; Date.now() < end; await sleep(200)) {
        const open = await runPrivileged("conntrack", ["-L", "-p", "tcp", "--state", "ESTABLISHED", "-d", vip], { target: target() });
        if (Number(/(\d+) flow entries have been shown/.exec(open.stderr)?.[1] ?? 0) >= 6) break;
      }
      const stats = await connectionStats(target());
      for (const mark of [0x500, 0x501, 0x502]) {
        const own = await runPrivileged("conntrack", ["-L", "-p", "tcp", "--state", "ESTABLISHED", "--mark", String(mark)], { target: target() });
        const shown = Number(/(\d+) flow entries have been shown/.exec(own.stderr)![1]);
        expect(stats.byMark.get(mark)?.established ?? 0).toBe(shown);
        expect(shown).toBe(2); // round robin: 6 held connections over 3 backends
      }
    } finally {
      await Promise.allSettled(holds);
    }
  });
});
