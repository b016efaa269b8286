import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKernel } from "../../lib/agent/client.ts";
import { ApplyError } from "../../lib/applier/errors.ts";
import { FarmListSchema } from "../../lib/farms/schema.ts";
import { resolveMarks } from "../../lib/farms/resolve.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import type { Target } from "../../lib/privileged/target.ts";
import { startAgent } from "../helpers/agent.ts";
import { guideFarm, MIXED_FARMS, SCHEDULER_FARMS } from "../helpers/farms.ts";
import { createNetns, deleteNetns } from "../helpers/netns.ts";

/**
 * The agent's libnftables sessions (lib/nftables/session.ts) against the
 * real kernel: one agent serving two namespaces, each target's session in
 * its own namespace, transactions still all or nothing with nft's own
 * message, drift behind natfarm's back still found, and a namespace made
 * again under its old name served as the new one.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-nft-session-"));
const socket = path.join(dir, "agent.sock");
const logFile = path.join(dir, "agent.log");
let a: { name: string; target: Target };
let b: { name: string; target: Target };
let agent: Awaited<ReturnType<typeof startAgent>>;
const k = () => agentKernel(socket);

beforeAll(async () => {
  a = await createNetns("nfsa");
  b = await createNetns("nfsb");
  agent = await startAgent({ socket, target: a.target, moreTargets: [b.target], logFile, env: { NATFARM_NFT_SESSION: "" } });
});
afterAll(async () => {
  await agent?.stop();
  if (a) await deleteNetns(a.name);
  if (b) await deleteNetns(b.name);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** natfarm's table as nft prints it (with counters: nothing here sends traffic), through the nft program, not the session. */
const table = async (t: Target) => (await runPrivileged("nft", ["list", "table", "ip", "natfarm"], { target: t, allowFailure: true })).stdout;
const served = () =>
  fs
    .readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l.includes("nftables engine"))
    .map((l) => JSON.parse(l) as { target?: string; via?: string });

const SET_A = resolveMarks(FarmListSchema.parse([guideFarm("nat"), ...SCHEDULER_FARMS]));
const SET_B = resolveMarks(FarmListSchema.parse(MIXED_FARMS));
const reweight = <F extends (typeof SET_A)[number]>(set: F[], farm: string, w: number): F[] =>
  set.map((f) => (f.name === farm ? { ...f, backends: f.backends.map((x, i) => (i === 0 ? { ...x, weight: w } : x)) } : f));

describe("the agent's libnftables sessions", () => {
  it("serve two namespaces, each with its own table: a change in one never lands in the other", async () => {
    await k().applyFarms(SET_A, { target: a.target, engine: "nftables" });
    await k().applyFarms(SET_B, { target: b.target, engine: "nftables" });
    const [ta, tb] = [await table(a.target), await table(b.target)];
    expect(ta).toContain("chain farm_app");
    expect(ta).not.toContain("chain farm_web");
    expect(tb).toContain("chain farm_web");
    expect(tb).not.toContain("chain farm_app");
    // Each target was served by a session, not by nft -f.
    const via = served().filter((e) => e.target);
    expect(new Set(via.map((e) => `${e.target} ${e.via}`))).toEqual(new Set([`netns:${a.name} libnftables`, `netns:${b.name} libnftables`]));

    for (let w = 2; w <= 4; w++) {
      const r = await k().applyFarms(reweight(SET_A, "app", w), { target: a.target, engine: "nftables", only: ["app"] });
      expect(r.changed).toBe(true);
      expect(await table(b.target)).toBe(tb);
    }
    const after = await table(a.target);
    expect(after).not.toBe(ta);
    expect(after).toContain("numgen random mod 5 ");
    // And the other way round.
    await k().applyFarms(SET_B.map((f) => (f.name === "web" ? { ...f, mode: "nat" as const } : f)), { target: b.target, engine: "nftables", only: ["web"] });
    expect(await table(a.target)).toBe(after);
    expect(await table(b.target)).not.toBe(tb);
  });

  it("a failed transaction through a session leaves the table byte for byte as it was, with nft -f's own message", async () => {
    const before = await table(a.target);
    for (const opts of [{ only: ["app"] }, {}]) {
      const e = await k()
        .applyFarms(reweight(SET_A, "app", 7), { target: a.target, engine: "nftables", injectFault: "last", ...opts })
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ApplyError);
      const err = e as ApplyError;
      expect(err.message).toMatch(/nft rejected the change: .*natfarm_injected_fault/s);
      expect(await table(a.target)).toBe(before);
      // The message is the one `nft -f -` prints for the same payload (the table is unchanged, so it fails the same way).
      const bare = await runPrivileged("nft", ["-f", "-"], { target: a.target, input: err.payload, inputAsFile: true, allowFailure: true });
      expect(bare.exitCode).not.toBe(0);
      expect(err.iptablesMessage.trim()).toBe(bare.stderr.trim());
      expect(await table(a.target)).toBe(before);
    }
    // The next change after a refused one still goes through.
    expect((await k().applyFarms(reweight(SET_A, "app", 7), { target: a.target, engine: "nftables", only: ["app"] })).changed).toBe(true);
  });

  it("drift made behind natfarm's back is still found after scoped changes from memory, and a full apply repairs it", async () => {
    const set = reweight(SET_A, "app", 7);
    const mark = set.find((f) => f.name === "app")!.backends[1]!.mark;
    await runPrivileged("nft", ["delete", "element", "ip", "natfarm", "backends", "{", `0x${mark.toString(16)}`, "}"], { target: a.target });
    // A scoped change of another farm plans from memory and does not notice (nor undo) it...
    const rr = await k().applyFarms(reweight(set, "rr", 3).map((f) => (f.name === "rr" ? { ...f, scheduler: "weight" as const } : f)), { target: a.target, engine: "nftables", only: ["rr"] });
    expect(rr.changed).toBe(true);
    // ...but every drift check reads the kernel.
    const d = await k().driftReport(set, { target: a.target, engine: "nftables" });
    expect(d.farms.find((f) => f.farm === "app")!.status).toBe("differs");
    expect(d.farms.find((f) => f.farm === "app")!.missing.join("\n")).toContain(`element backends 0x${mark.toString(16)}`);
    const full = await k().applyFarms(set, { target: a.target, engine: "nftables" });
    expect(full.changed).toBe(true);
    expect((await k().driftReport(set, { target: a.target, engine: "nftables" })).inSync).toBe(true);
  });

  it("a namespace deleted and made again under the same name is served as the new one, not through the old session", async () => {
    await deleteNetns(b.name);
    await runPrivileged("ip", ["netns", "add", b.name]);
    expect(await table(b.target)).toBe("");
    const r = await k().applyFarms(SET_B, { target: b.target, engine: "nftables" });
    expect(r.changed).toBe(true);
    expect(await table(b.target)).toContain("chain farm_web");
    expect(await table(a.target)).not.toContain("chain farm_web");
  });
});
