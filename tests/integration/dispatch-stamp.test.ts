import fs from "node:fs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyFarms, reportDigests } from "../../lib/applier/apply.ts";
import { targetLockFile } from "../../lib/applier/lock.ts";
import { forgetStamp, stampFile, unchangedByStamp, writeStamp } from "../../lib/applier/stamp.ts";
import { foreignLines } from "../../lib/netfilter/parse.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { DISPATCH_FARMS } from "../helpers/dispatch-farms.ts";
import { createNetns, deleteAllNetns, iptables, iptablesSave } from "../helpers/netns.ts";

/**
 * The short re-apply (lib/applier/stamp.ts) against real netfilter: the
 * stamp of a whole apply says "unchanged" only while the kernel holds exactly
 * what that apply wrote. Every kind of drift behind natfarm's back makes it
 * miss, and the whole apply that follows mends the drift and leaves foreign
 * rules as they were.
 */
let target: Target;
let ns: string;
let other: Target;
let otherNs: string;
const dir = mkdtempSync(path.join(tmpdir(), "natfarm-stamp-"));
const BIN = path.join(import.meta.dirname, "..", "..", "bin", "natfarm.mjs");

beforeAll(async () => {
  ({ name: ns, target } = await createNetns("stmp"));
  ({ name: otherNs, target: other } = await createNetns("stmq"));
  reportDigests(true);
});
afterAll(async () => {
  reportDigests(false);
  forgetStamp(target);
  forgetStamp(other);
  await deleteAllNetns();
});

const both = async (t: Target) => `${await iptablesSave(t, "mangle")}${await iptablesSave(t, "nat")}${await iptablesSave(t, "filter")}`;

async function applyAndStamp(input: string) {
  const r = await applyFarms(DISPATCH_FARMS, { target });
  expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
  writeStamp(target, { input, digest: r.digest!, warnings: ["a warning of the file"], vips: ["198.51.100.10"] });
  return r;
}

describe("the stamp of a whole apply", () => {
  it("a first apply into an empty namespace hooks all three built-in chains; the stamp then holds for its input only", async () => {
    await applyAndStamp("in-1");
    const save = await both(target);
    expect(save).toContain('-A PREROUTING -m comment --comment "natfarm: entry" -j NATFARM-PREROUTING');
    expect(save).toContain('-A POSTROUTING -m comment --comment "natfarm: entry" -j NATFARM-POSTROUTING');
    expect(save.match(/-j NATFARM-PREROUTING$/gm)).toHaveLength(2);
    expect(await unchangedByStamp(target, "in-1")).toEqual({ warnings: ["a warning of the file"] });
    expect(await unchangedByStamp(target, "in-2")).toBeNull();
    // Counters are no part of what was applied.
    await iptables(target, ["-t", "mangle", "-Z"]);
    expect(await unchangedByStamp(target, "in-1")).not.toBeNull();
  });

  const drifts: [string, (t: Target) => Promise<void>][] = [
    ["a rule deleted", (t) => iptables(t, ["-t", "mangle", "-D", "NATFARM-F-web443", "1"]).then(() => {})],
    [
      "a rule edited in place, no counter involved",
      async (t) => {
        const spec = (await iptables(t, ["-t", "mangle", "-S", "NATFARM-F-web443"])).split("\n").find((l) => l.includes("--probability"))!;
        const edited = spec.replace(/^-A \S+ /, "").replace(/--probability \S+/, "--probability 0.90000000009");
        await iptables(t, ["-t", "mangle", "-R", "NATFARM-F-web443", "1", ...edited.split(" ").map((w) => w.replace(/^"|"$/g, ""))]);
      },
    ],
    ["a foreign rule inserted in a natfarm chain", (t) => iptables(t, ["-t", "nat", "-I", "NATFARM-DST-0200", "1", "-s", "192.0.2.7/32", "-j", "ACCEPT"]).then(() => {})],
    ["a hook removed", (t) => iptables(t, ["-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "natfarm: entry", "-j", "NATFARM-POSTROUTING"]).then(() => {})],
    ["a natfarm chain added by hand", (t) => iptables(t, ["-t", "nat", "-N", "NATFARM-DST-f000"]).then(() => {})],
  ];

  it.each(drifts)("%s behind natfarm's back: the stamp misses, the whole apply mends it and foreign rules stay as they were", async (_label, drift) => {
    await iptables(target, ["-t", "filter", "-A", "INPUT", "-s", "192.0.2.9/32", "-m", "comment", "--comment", "someone else", "-j", "ACCEPT"]);
    await iptables(target, ["-t", "mangle", "-A", "PREROUTING", "-s", "192.0.2.9/32", "-j", "MARK", "--set-mark", "0x7"]);
    const clean = await both(target);
    await drift(target);
    expect(await unchangedByStamp(target, "in-1")).toBeNull();
    const r = await applyAndStamp("in-1");
    expect(r.changed).toBe(true);
    const mended = await both(target);
    expect(mended.split("\n").filter((l) => !l.startsWith("#")).sort()).toEqual(clean.split("\n").filter((l) => !l.startsWith("#")).sort());
    expect(foreignLines(mended)).toEqual(foreignLines(clean));
    expect(await unchangedByStamp(target, "in-1")).not.toBeNull();
  });

  it("misses while an interrupted apply's journal is there, while natfarm's nftables table exists, and while a VIP is one of the target's own addresses", async () => {
    await applyAndStamp("in-1");
    const journal = targetLockFile(target).replace(/\.lock$/, ".journal");
    fs.writeFileSync(journal, JSON.stringify({ pid: 1, startedAt: "x", farms: 1, only: null, tables: ["nat"] }));
    expect(await unchangedByStamp(target, "in-1")).toBeNull();
    fs.rmSync(journal);
    await execa("ip", ["netns", "exec", ns, "nft", "add", "table", "ip", "natfarm"]);
    expect(await unchangedByStamp(target, "in-1")).toBeNull();
    await execa("ip", ["netns", "exec", ns, "nft", "delete", "table", "ip", "natfarm"]);
    // The target's addresses are kept for a second per target (local-vips.ts), for the whole apply as for this.
    const fresh = () => new Promise((r) => setTimeout(r, 1100));
    await execa("ip", ["netns", "exec", ns, "ip", "addr", "add", "198.51.100.10/32", "dev", "lo"]);
    await fresh();
    expect(await unchangedByStamp(target, "in-1")).toBeNull();
    await execa("ip", ["netns", "exec", ns, "ip", "addr", "del", "198.51.100.10/32", "dev", "lo"]);
    await fresh();
    expect(await unchangedByStamp(target, "in-1")).not.toBeNull();
  });

  it("a stamp anyone else could have written is not read", async () => {
    await applyAndStamp("in-1");
    fs.chmodSync(stampFile(target), 0o666);
    expect(await unchangedByStamp(target, "in-1")).toBeNull();
    fs.chmodSync(stampFile(target), 0o600);
    expect(await unchangedByStamp(target, "in-1")).not.toBeNull();
  });
});

describe("natfarm apply, run again on the same file", () => {
  const natfarm = (...args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false });
  // The short way is the prebuilt CLI's (`npm test` builds it first); run through tsx the CLI goes the whole way.
  const built = () => {
    try {
      const { sources } = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "..", "..", "dist", "cli", "sources.json"), "utf8"));
      return (sources as [string, number][]).every(([f, m]) => fs.statSync(path.join(import.meta.dirname, "..", "..", f)).mtimeMs === m);
    } catch {
      return false;
    }
  };

  it("is told unchanged by its stamp, with the file's warnings again; a rule deleted by hand is put back by the next run", async () => {
    const file = path.join(dir, "farms.json");
    writeFileSync(file, JSON.stringify({ farms: DISPATCH_FARMS }));
    const first = await natfarm("apply", "-f", file, "--target", `netns:${otherNs}`, "--json");
    expect(first.exitCode).toBe(0);
    expect(JSON.parse(first.stdout).changed).toBe(true);
    const again = await natfarm("apply", "-f", file, "--target", `netns:${otherNs}`, "--json");
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toBe(first.stderr);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false, payload: "", ...(built() ? { checkedBy: "stamp" } : {}) });
    expect(JSON.parse(again.stdout).checkedBy === "stamp").toBe(built());
    const before = await both(other);
    await iptables(other, ["-t", "mangle", "-D", "NATFARM-F-web80", "1"]);
    const mend = await natfarm("apply", "-f", file, "--target", `netns:${otherNs}`, "--json");
    expect(JSON.parse(mend.stdout)).toMatchObject({ changed: true, stats: { chainsRewritten: 1 } });
    expect((await both(other)).replace(/^#.*\n/gm, "")).toBe(before.replace(/^#.*\n/gm, ""));
    const last = await natfarm("apply", "-f", file, "--target", `netns:${otherNs}`, "--json");
    expect(JSON.parse(last.stdout).changed).toBe(false);
  });
});
