import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { labDown, uniqueLabName } from "../../lib/lab/index.ts";
import { labFarm } from "../helpers/farms.ts";

/** The operator's path: `natfarm lab up`, `natfarm apply` into the lab, `natfarm lab traffic`, `natfarm lab down`. */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false });
const name = uniqueLabName("cli");
afterAll(() => labDown({ name }));

describe("natfarm lab", () => {
  it("brings a lab up, balances traffic through applied rules, and takes it down", async () => {
    const up = await natfarm("lab", "up", "--name", name, "--backends", "3", "--json");
    expect(up.stderr).toBe("");
    const info = JSON.parse(up.stdout);
    expect(info.target).toBe(`netns:${name}-lb`);

    const dir = mkdtempSync(path.join(tmpdir(), "natfarm-labcli-"));
    const file = path.join(dir, "farms.json");
    writeFileSync(file, JSON.stringify({ farms: [labFarm("web", "198.51.100.250", 80, [1, 1, 1], "nat")] }));
    expect((await natfarm("apply", "-f", file, "--target", info.target)).exitCode).toBe(0);

    const traffic = await natfarm("lab", "traffic", "--name", name, "--vip", "198.51.100.250", "--port", "80", "--connections", "300", "--json");
    expect(traffic.exitCode).toBe(0);
    const r = JSON.parse(traffic.stdout);
    expect(r.ok).toBe(300);
    expect(Object.keys(r.backends).sort()).toEqual(["b0", "b1", "b2"]);
    for (const b of Object.values(r.backends) as { peers: Record<string, number> }[]) expect(Object.keys(b.peers)).toEqual(["198.51.100.250"]);

    const text = await natfarm("lab", "traffic", "--name", name, "--vip", "198.51.100.250", "--port", "80", "--connections", "30");
    expect(text.stdout).toMatch(/30\/30 tcp connections to 198\.51\.100\.250:80 answered/);
    expect(text.stdout).toMatch(/b0 .*saw source 198\.51\.100\.250/);

    const refused = await natfarm("lab", "traffic", "--name", name, "--vip", "8.8.8.8", "--port", "80");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/198\.51\.100\.0\/24/);

    expect((await natfarm("lab", "down", "--name", name)).exitCode).toBe(0);
    expect((await natfarm("lab", "status", "--name", name)).stdout).toMatch(/no lab named/);
  });
});
