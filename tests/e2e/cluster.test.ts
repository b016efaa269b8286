import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { captureAction, mainAxeViolations, replayHeaders } from "./ui-expect.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maintenanceFile } from "../../lib/cluster/maintenance.ts";
import { clusterLabFail, clusterLabHeal, clusterLabStatus, clusterLabUp, nodeRunDir } from "../../lib/lab/cluster.ts";
import { labDown, uniqueLabName } from "../../lib/lab/index.ts";
import { request } from "../../lib/web/client.ts";
import { startAgent } from "../helpers/agent.ts";
import { namespacesOf, startConsole, type Console } from "./harness.ts";

/**
 * The Cluster page in Chromium against the built console, pointed at a real
 * two-node cluster lab (keepalived, conntrackd) through an agent that runs
 * that lab — the console's own path to the nodes. The console's farm target
 * is `none`: this file is about the cluster, not the farms. Shown: the roles,
 * an operator's maintenance handover and return through the page's buttons,
 * a viewer with no buttons whose replayed maintenance request is refused
 * with nothing changed, split brain as the critical alert, and axe-core on
 * the page healthy and critical.
 */
const CL = uniqueLabName("ce");
let c: Console;
let page: Page;
let dir: string;
let agent: { stop(): Promise<void> } | null = null;
const url = (p: string) => `${c.baseUrl}${p}`;
const raw = (p: string, o: Parameters<typeof request>[1] = {}) => request(url(p), { insecure: true, timeoutMs: 30_000, ...o });
const maintenance = (id: number) => fs.readFileSync(maintenanceFile(nodeRunDir(CL, id)), "utf8").trim();

const axeViolations = mainAxeViolations;

const role = (n: string) => page.getByTestId(`role-${n}`);
const roleText = async (n: string) => ((await role(n).textContent()) ?? "").trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-e2e-cl-"));
  await clusterLabUp({ name: CL, nodes: 2, backends: 1, ownerPid: process.pid });
  const socket = path.join(dir, "agent.sock");
  agent = await startAgent({ socket, target: { kind: "netns", name: `${CL}-n1` }, lab: CL, logFile: path.join(dir, "agent.log"), testHooks: false });
  c = await startConsole({
    backends: 1,
    login: "operator",
    env: { NATFARM_CLUSTER: `lab:${CL}`, NATFARM_AGENT_SOCKET: socket, NATFARM_TARGET: "none" },
    log: (m) => console.log(`[e2e cluster] ${m}`),
  });
  page = c.page;
}, 600_000);

afterAll(async () => {
  const lab = c?.lab.name;
  await c?.stop();
  await agent?.stop();
  await labDown({ name: CL });
  fs.rmSync(dir, { recursive: true, force: true });
  if (lab) expect(namespacesOf(lab)).toEqual([]);
  expect(namespacesOf(CL)).toEqual([]);
}, 120_000);

describe.sequential("the Cluster page", () => {
  it("shows each node's role, addresses, links and conntrackd counters, with no alert, and passes axe", async () => {
    await page.goto(url("/cluster"));
    await page.getByRole("heading", { name: "Node n1" }).waitFor();
    expect(await roleText("n1")).toBe("master");
    expect(await roleText("n2")).toBe("backup");
    const n1 = page.getByRole("region", { name: "Node n1" });
    expect(await n1.textContent()).toMatch(/198\.51\.100\.1, 203\.0\.113\.1/);
    expect(await n1.textContent()).toMatch(/cli0 up.*bk0 up.*sync0 up/);
    expect(await n1.textContent()).toMatch(/\d+ own connection\(s\), \d+ synced from the peer\(s\)/);
    expect(await page.getByTestId("applied-n2").textContent()).toMatch(/[0-9a-f]{12}\s*the desired set/);
    expect(await page.locator("main").getByRole("alert").count()).toBe(0);
    expect(await page.getByRole("button", { name: /in maintenance/ }).count()).toBe(2);
    expect(await axeViolations(page)).toEqual([]);
  });

  it("a viewer sees no maintenance button, and the operator's request replayed with the viewer's session is refused with nothing changed", async () => {
    // The exact request the operator's browser makes, stopped before it reaches the server.
    const captured = await captureAction(page, c.baseUrl, () => page.getByRole("button", { name: "Put n1 in maintenance" }).click());
    await c.loginAs("viewer");
    await page.goto(url("/cluster"));
    await page.getByRole("heading", { name: "Node n1" }).waitFor();
    expect(await page.locator("main").getByRole("button", { name: /maintenance|service/ }).count()).toBe(0);
    const cookie = await c.cookieHeader();
    const r = await raw(captured.path, { method: "POST", headers: replayHeaders(captured, cookie), body: captured.body });
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/Refused: putting a cluster node in or out of maintenance needs the operator role.*signed in as viewer/);
    await sleep(1500); // a handover, had one started, shows within this
    expect(maintenance(1)).toBe("0");
    expect((await clusterLabStatus({ name: CL })).master).toBe("n1");
    expect(c.query("SELECT actor, result FROM AuditEntry WHERE action = 'refused' AND detail LIKE '%maintenance%'")).toEqual([{ actor: "vera", result: "refused" }]);
  });

  it("an operator puts the master in maintenance from the page: the other node becomes master; back in service, it stands by", async () => {
    await c.loginAs("operator");
    await page.goto(url("/cluster"));
    await page.getByRole("button", { name: "Put n1 in maintenance" }).click();
    await expect.poll(() => roleText("n2"), { timeout: 30_000 }).toBe("master");
    await expect.poll(() => roleText("n1"), { timeout: 10_000 }).toBe("fault");
    await page.getByRole("region", { name: "Node n1" }).getByText("in maintenance", { exact: true }).waitFor();
    expect(maintenance(1)).toBe("1");
    // A node in maintenance is a warning (it cannot take over), not an alert.
    expect(await page.locator("main").getByRole("alert").count()).toBe(0);
    await page.getByRole("button", { name: "Bring n1 back in service" }).click();
    await expect.poll(() => roleText("n1"), { timeout: 30_000 }).toBe("backup");
    expect(await roleText("n2")).toBe("master");
    expect(maintenance(1)).toBe("0");
    const auditQuery = () => c.query<{ actor: string; result: string; detail: string }>("SELECT actor, result, detail FROM AuditEntry WHERE action = 'putting a cluster node in or out of maintenance' ORDER BY id");
    // The page's 2 s poll can show n1 as backup before the action has returned and been audited.
    await expect.poll(() => auditQuery().length, { timeout: 30_000 }).toBe(2);
    const audit = auditQuery();
    expect(audit.map((a) => [a.actor, a.result])).toEqual([
      ["oper", "ok"],
      ["oper", "ok"],
    ]);
    expect(audit[0]!.detail).toMatch(/n1 is in maintenance; n2 holds the floating addresses/);
  });

  it("split brain (the sync link cut) is shown as a critical alert, axe passing; mended, the alert goes", async () => {
    await clusterLabFail({ name: CL, node: 2, links: "sync" });
    try {
      const alert = page.locator("main").getByRole("alert");
      await expect.poll(async () => ((await alert.count()) ? await alert.first().textContent() : ""), { timeout: 20_000 }).toMatch(/Critical.*split brain: n1 and n2 both act as master/);
      // The alert may come first: a node holding the addresses already acts as master before its notify run has recorded the state the role shows.
      await expect.poll(() => roleText("n1"), { timeout: 10_000 }).toBe("master");
      await expect.poll(() => roleText("n2"), { timeout: 10_000 }).toBe("master");
      expect(await page.getByTestId("cluster-master").textContent()).toMatch(/split brain/);
      expect(await axeViolations(page)).toEqual([]);
    } finally {
      await clusterLabHeal({ name: CL, node: 2 });
    }
    await expect.poll(() => page.locator("main").getByRole("alert").count(), { timeout: 30_000 }).toBe(0);
  });
});
