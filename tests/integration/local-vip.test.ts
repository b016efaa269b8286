import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FarmInput } from "../../lib/farms/schema.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { createNetns, deleteAllNetns, iptablesSave } from "../helpers/netns.ts";

/**
 * A VIP that is one of the balancer's own addresses would capture the
 * balancer's own traffic (with ports "*" and protocol all: SSH, and the
 * operator is locked out). Refused unless the address is labelled as a VIP
 * or the farm says allowLocalVip.
 */
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-localvip-"));
let ns: string;
beforeAll(async () => {
  ({ name: ns } = await createNetns("lvip"));
  // Both ends of the pair stay inside the namespace: nothing reaches the root namespace.
  for (const cmd of [
    ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
    ["link", "set", "v0", "up"],
    ["addr", "add", "198.51.100.1/24", "dev", "v0"],
    ["addr", "add", "198.51.100.250/32", "dev", "v0", "label", "v0:vip"],
  ]) await runPrivileged("ip", ["-n", ns, ...cmd]);
});
afterAll(deleteAllNetns);

const apply = (farms: FarmInput[]) => {
  const f = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ farms }));
  return execa(process.execPath, [BIN, "apply", "-f", f, "--target", `netns:${ns}`], { reject: false });
};
const everything = (vip: string, extra: Partial<FarmInput> = {}): FarmInput => ({
  name: "grab",
  vip,
  ports: "*",
  protocol: "all",
  mode: "dnat",
  backends: [{ ip: "203.0.113.10", weight: 1 }],
  ...extra,
});

describe("a VIP on the balancer's own address", () => {
  it("is refused with a clear message, exit 2, and nothing applied", async () => {
    const r = await apply([everything("198.51.100.1")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/farm "grab" › vip: 198\.51\.100\.1 is an address of the balancer itself \(v0 in netns:lvip[0-9a-f]+\)/);
    expect(r.stderr).toMatch(/SSH/);
    expect(r.stderr).toMatch(/allowLocalVip/);
    expect(await iptablesSave({ kind: "netns", name: ns })).not.toMatch(/NATFARM/);
  });

  it("is accepted when the address is labelled as a VIP, or when the farm sets allowLocalVip", async () => {
    const labelled = await apply([everything("198.51.100.250")]);
    expect(labelled.exitCode, labelled.stderr).toBe(0);
    const allowed = await apply([everything("198.51.100.1", { allowLocalVip: true })]);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(await iptablesSave({ kind: "netns", name: ns })).toMatch(/-d 198\.51\.100\.1\/32 .*FARM_grab_0_/);
  });

  it("an address that is not the balancer's is fine", async () => {
    const r = await apply([everything("198.51.100.77", { ports: "80", protocol: "tcp", backends: [{ ip: "203.0.113.10", port: 80, weight: 1 }] })]);
    expect(r.exitCode, r.stderr).toBe(0);
  });
});
