import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BAD_INPUTS, good } from "../helpers/bad-inputs.ts";
import { MIXED_FARMS } from "../helpers/farms.ts";
import { createNetns, deleteAllNetns, iptablesSave } from "../helpers/netns.ts";
import type { Target } from "../../lib/privileged/target.ts";

/** `natfarm` as operators run it: a real process, real files, a namespace as target. */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-cli-"));
const file = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
};
const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false });
const rulesOnly = (save: string) => save.split("\n").filter((l) => l && !l.startsWith("#"));

let target: Target;
let ns: string;
beforeAll(async () => ({ name: ns, target } = await createNetns("cli")));
afterAll(deleteAllNetns);

describe("natfarm CLI", () => {
  it("validate and render the guide's example", async () => {
    const f = file("guide.json", good());
    const v = await natfarm("validate", "-f", f);
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain("valid: 1 farm(s), 2 backend(s)");
    const r = await natfarm("render", "-f", f);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("--probability 0.50000000000 -m multiport --dports 443 -m comment --comment FARM_app_0_ -j MARK --set-xmark 0x20c/0xffffffff");
  });

  it("apply makes the target hold the file's farms; applying again writes nothing; diff agrees", async () => {
    const f = file("mixed.json", { farms: MIXED_FARMS });
    const first = await natfarm("apply", "-f", f, "--target", `netns:${ns}`);
    // Only the warning about farm "any" (protocol all on every port); no error.
    expect(first.stderr).toMatch(/^warning: farm "any": protocol all on ports \* captures every connection to 198\.51\.100\.251\b[^\n]*$/);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toMatch(/^applied: /);
    const again = await natfarm("apply", "-f", f, "--target", `netns:${ns}`, "--json");
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false, payload: "" });
    const diff = await natfarm("diff", "-f", f, "--target", `netns:${ns}`);
    expect(diff.exitCode).toBe(0);
    expect(diff.stdout).toContain("in sync");
    const tables = JSON.parse((await natfarm("tables", "--target", `netns:${ns}`, "--json")).stdout);
    const chains = tables.tables.flatMap((t: { chains: { name: string }[] }) => t.chains.map((c) => c.name));
    expect(chains).toContain("NATFARM-PREROUTING");
  });

  it("bad input: exit 2 with a message naming the field, and nothing applied", async () => {
    const before = rulesOnly(await iptablesSave(target));
    const runs = await Promise.all(
      BAD_INPUTS.map(async ([label, input, message], i) => {
        const r = await natfarm("apply", "-f", file(`bad${i}.json`, input), "--target", `netns:${ns}`);
        return { label, message, r };
      }),
    );
    for (const { label, message, r } of runs) {
      expect(r.exitCode, label).toBe(2);
      expect(r.stderr, label).toMatch(message);
    }
    expect(rulesOnly(await iptablesSave(target))).toEqual(before);
  });

  it("malformed JSON, a bad target and a missing file are bad input (exit 2)", async () => {
    const json = await natfarm("validate", "-f", file("broken.json", "{\"farms\": ["));
    expect(json.exitCode).toBe(2);
    expect(json.stderr).toMatch(/not valid JSON/);
    const t = await natfarm("apply", "-f", file("g.json", good()), "--target", "netns:../../etc");
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toMatch(/target must be "host" or "netns:<name>"/);
    expect((await natfarm("validate", "-f", path.join(dir, "nope.json"))).exitCode).toBe(2);
  });

  it("a target that cannot be reached fails with exit 1", async () => {
    const r = await natfarm("apply", "-f", file("g2.json", good()), "--target", "netns:natfarm-no-such-ns");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/natfarm-no-such-ns/);
  });

  it("warnings go to stderr, the exit status is unchanged; a closed stdout is not a crash", async () => {
    const f = file("every-port.json", { farms: [{ name: "every", vip: "198.51.100.90", ports: "*", protocol: "all", mode: "nat", backends: [{ ip: "203.0.113.10" }] }] });
    const v = await natfarm("validate", "-f", f);
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain("valid: 1 farm(s)");
    expect(v.stderr).toMatch(/^warning: farm "every": protocol all on ports \*/);
    const r = await execa("bash", ["-c", `'${process.execPath}' '${BIN}' render -f '${file("mixed-render.json", { farms: MIXED_FARMS })}' | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`], { reject: false });
    expect(r.stderr).not.toMatch(/EPIPE|at /);
    expect(r.stdout.trim()).toBe("0");
  });

  it("flush removes natfarm's rules and nothing else", async () => {
    const r = await natfarm("flush", "--target", `netns:${ns}`);
    expect(r.exitCode).toBe(0);
    expect(await iptablesSave(target)).not.toMatch(/NATFARM|FARM_/);
  });
});
