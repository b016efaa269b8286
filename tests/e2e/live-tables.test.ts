import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase, type Db } from "../../lib/db/client.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import { labEnsureVip, labTraffic } from "../../lib/lab/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { countersOf } from "../../lib/service/traffic-counters.ts";
import { createTrafficSampler } from "../../lib/service/traffic-sampler.ts";
import { namespacesOf, startConsole, type Console } from "./harness.ts";
import { request } from "../../lib/web/client.ts";
import { captureAction, expectAttribute, expectCount, expectHidden, expectText, expectValue, expectVisible, mainAxeViolations, replayHeaders, toastsOf } from "./ui-expect.ts";

/**
 * Live tables for an operator, in Chromium against the built console on a
 * lab with real traffic: a chain cut by the page's rule cap says so where it
 * is cut and can be shown whole, rules ordered by their counters, "with
 * traffic only", the filters kept in the URL; and the farm page's traffic
 * graph from the sampler (run here as the health checker runs it, against
 * the same kernel and database), whose totals go on counting across a
 * rewrite that restarts the kernel's counters; Reset counters, for
 * operators only, with its confirmation.
 */
const FARM = "lab-example";
const VIP = "198.51.100.200";
// A foreign chain longer than the page's cap (600 rules), reached from nat PREROUTING by a foreign rule.
const FOREIGN = "FOREIGN-BIG";
const FOREIGN_RULES = 650;

let c: Console;
let page: Page;
let db: Db;
const url = (p: string) => `${c.baseUrl}${p}`;

beforeAll(async () => {
  c = await startConsole({ backends: 2, log: (m) => console.log(`[e2e-tables] ${m}`) });
  page = c.page;
  db = await openDatabase(c.dbUrl);
  const lines = ["*nat", `:${FOREIGN} - [0:0]`, `-A PREROUTING -d 192.0.2.1/32 -j ${FOREIGN}`];
  for (let i = 0; i < FOREIGN_RULES; i++) lines.push(`-A ${FOREIGN} -p tcp --dport ${10_000 + i} -j RETURN`);
  lines.push("COMMIT", "");
  await runPrivileged("iptables-restore", ["--noflush", "-w"], { target: c.target, input: lines.join("\n") });
  await page.goto(url("/"));
  await page.getByRole("button", { name: "Lab example" }).click();
  await expectVisible(page.getByRole("table", { name: "Farms" }).getByRole("link", { name: FARM, exact: true }), { timeout: 60_000 });
  await labEnsureVip({ name: c.lab.name, vip: VIP });
}, 600_000);

afterAll(async () => {
  if (!c) return;
  await disconnectPrisma(c.dbUrl).catch(() => {});
  const labName = c.lab.name;
  await c.stop();
  expect(namespacesOf(labName), "namespaces left behind").toEqual([]);
}, 120_000);

const chain = (p: Page, table: string, name: string | RegExp): Locator => p.getByRole("table", { name: typeof name === "string" ? `${table} ${name}` : name });
/** A rule row's packets (the exact count is the cell's title). */
async function packetsOf(rows: Locator): Promise<number[]> {
  const out: number[] = [];
  for (const row of await rows.all()) {
    const cell = row.getByRole("cell").first();
    const title = await cell.getAttribute("title");
    if (title !== null) out.push(Number(title));
  }
  return out;
}
const dnatCounters = async () => countersOf(await directKernel.readTables(c.target)).filter((r) => r.farm === FARM);
const sum = (xs: { packets: number }[]) => xs.reduce((n, x) => n + x.packets, 0);

describe.sequential("live tables at scale", () => {
  it("a chain cut by the cap says how many rules are left out where it is cut, and Show all lists it whole", async () => {
    await page.goto(url("/tables?scope=all"));
    await expectVisible(page.getByRole("heading", { level: 1, name: "Live tables" }));
    const big = chain(page, "nat", FOREIGN);
    await expectVisible(big);
    const cut = big.getByTestId("chain-cut");
    await expectText(cut, /… [\d,]+ more rules? in this chain/);
    const shown = await big.locator('tbody tr:not([data-testid="chain-cut"])').count();
    const more = Number((/… ([\d,]+) more/.exec(await cut.innerText())?.[1] ?? "0").replace(/,/g, ""));
    expect(shown + more).toBe(FOREIGN_RULES);
    // nat PREROUTING holds natfarm's jump and the foreign jump: never drawn empty.
    const pre = chain(page, "nat", "PREROUTING");
    await expectVisible(pre.getByRole("cell", { name: `-d 192.0.2.1/32 -j ${FOREIGN}` }).or(pre.getByTestId("chain-cut")));
    await expect(pre.getByRole("cell", { name: "empty", exact: true }).count()).resolves.toBe(0);
    await big.getByRole("button", { name: `Show all ${FOREIGN_RULES} rules of nat ${FOREIGN}` }).click();
    await expectCount(big.locator("tbody tr"), FOREIGN_RULES, { timeout: 30_000 });
    expect(await mainAxeViolations(page)).toEqual([]);
  });

  it("orders rules by packets, keeps only rules with traffic, and keeps both in the URL across a reload", async () => {
    const r = await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 60 });
    expect(r.failed).toBe(0);
    await page.goto(url("/tables"));
    await page.getByLabel("Order", { exact: true }).selectOption("packets");
    await page.getByLabel("With traffic only").check();
    await expect.poll(() => new URL(page.url()).search).toBe("?sort=packets&traffic=1");
    // The last tables stay on screen until the filtered ones arrive.
    const shown = page.getByTestId("live-tables");
    await expectAttribute(shown, "data-traffic", "1");
    await expectAttribute(shown, "data-sort", "packets");
    const farmRows = (p: Page) => p.getByRole("row").filter({ has: p.getByRole("link", { name: new RegExp(`^${FARM}( #\\d)?$`) }) });
    await expectVisible(farmRows(page).first());
    // Every rule shown has counted a packet, and each chain lists its busiest rules first.
    for (const t of await page.locator("table").all()) {
      const counts = await packetsOf(t.locator("tbody tr"));
      expect(counts.every((n) => n > 0)).toBe(true);
      expect(counts).toEqual([...counts].sort((a, b) => b - a));
    }
    await page.reload();
    await expectAttribute(shown, "data-traffic", "1");
    await expectValue(page.getByLabel("Order", { exact: true }), "packets");
    expect(await page.getByLabel("With traffic only").isChecked()).toBe(true);
    await expectVisible(farmRows(page).first());
    expect(await mainAxeViolations(page)).toEqual([]);
  });

  it("the farm's traffic graph counts on across a rewrite that restarts the kernel's counters", async () => {
    // The sampler as the health checker runs it, stepped by hand on a clock 10 s a step, ending now.
    let clock = Date.now() - 40_000;
    const sampler = createTrafficSampler({ db, kernel: directKernel, target: c.target, now: () => clock });
    const total = async () => (await db.trafficSample.findFirst({ where: { farm: FARM, step: 10 }, orderBy: { at: "desc" } }))?.connections ?? null;
    await sampler.tick();
    const start = (await total())!;
    expect(start).toBe(sum(await dnatCounters()));

    clock += 10_000;
    expect((await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 100 })).failed).toBe(0);
    await sampler.tick();
    expect(await total()).toBe(start + 100);

    // Stop and start: the farm's rules leave the kernel and are written again, their counters from 0.
    await page.goto(url(`/farms/${FARM}`));
    await page.getByRole("button", { name: "Stop farm" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Stop farm" }).click();
    await expectVisible(page.getByRole("button", { name: "Start farm" }), { timeout: 30_000 });
    await page.getByRole("button", { name: "Start farm" }).click();
    await expectVisible(page.getByRole("button", { name: "Stop farm" }), { timeout: 30_000 });
    await expect.poll(async () => sum(await dnatCounters()), { timeout: 15_000 }).toBe(0);

    clock += 10_000;
    expect((await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 60 })).failed).toBe(0);
    expect(sum(await dnatCounters())).toBe(60);
    await sampler.tick();
    expect(await total()).toBe(start + 160);

    // The graph on the farm page: 100 connections in a 10 s step is 10 per second at its peak.
    await page.goto(url(`/farms/${FARM}`));
    const graph = page.getByTestId("traffic-connections");
    await expectVisible(graph, { timeout: 30_000 });
    await expect.poll(async () => Number(await graph.getAttribute("data-peak"))).toBe(10);
    await expectText(graph, /peak 10\.0 \/s/);
    await expectAttribute(graph.getByRole("img"), "aria-label", /New connections per second, last hour: now .*, peak 10\.0 \/s\./);
    // The radio itself is visually hidden: an operator clicks its label.
    await page.getByTestId("traffic-graph").locator("label", { hasText: "24 hours" }).click();
    expect(await page.getByRole("radio", { name: "24 hours" }).isChecked()).toBe(true);
    await expectVisible(page.getByTestId("traffic-graph").getByText(/every minute/));
    expect(await mainAxeViolations(page)).toEqual([]);
  });

  it("Reset counters: opens on Cancel and says what stays; natfarm's counters at 0 after, other software's kept; a viewer gets no button and a replayed reset is refused", async () => {
    // Other software's counter, ahead of natfarm's jump in mangle PREROUTING: it counts every packet of the lab's traffic.
    await runPrivileged("iptables", ["-w", "5", "-t", "mangle", "-I", "PREROUTING", "-p", "tcp", "-m", "comment", "--comment", "e2e foreign counter"], { target: c.target });
    const foreignCount = async () => {
      const save = (await runPrivileged("iptables-save", ["-c", "-t", "mangle"], { target: c.target })).stdout;
      const at = (re: RegExp) => Number(re.exec(save)?.[1] ?? "-1");
      return { foreign: at(/\[(\d+):\d+\] -A PREROUTING -p tcp -m comment --comment "e2e foreign counter"/), hook: at(/\[(\d+):\d+\] -A PREROUTING .*-j NATFARM-PREROUTING/) };
    };
    expect((await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 40 })).failed).toBe(0);
    expect(sum(await dnatCounters())).toBeGreaterThan(0);
    const kept = await foreignCount();
    expect(kept.foreign).toBeGreaterThan(0);
    expect(kept.hook).toBeGreaterThan(0);

    await page.goto(url("/tables"));
    const reset = page.getByRole("button", { name: "Reset counters", exact: true });
    await reset.click();
    const dialog = page.getByRole("dialog", { name: "Reset natfarm's counters?" });
    await expectVisible(dialog);
    // Enter pressed out of habit cancels: the dialog opens on Cancel.
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
    await expectText(dialog, /NATFARM-\* chains in mangle and nat/);
    await expectText(dialog, /Not reset: other software's rules, chains and tables keep their counters, and so do natfarm's jumps from the built-in chains/);
    expect(await mainAxeViolations(page)).toEqual([]);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await expectHidden(dialog);
    expect(sum(await dnatCounters())).toBeGreaterThan(0);

    await reset.click();
    await dialog.getByRole("button", { name: "Reset counters" }).click();
    await expectText(toastsOf(page, "success").filter({ hasText: "Reset natfarm's" }), /Reset natfarm's counters to 0: [\d,]+ rules .*which had counted [1-9][\d,]* packets.*Other software's counters and natfarm's jumps in the built-in chains were left as they were/, { timeout: 30_000 });
    expect(sum(await dnatCounters())).toBe(0);
    const after = await foreignCount();
    expect(after.foreign).toBeGreaterThanOrEqual(kept.foreign);
    expect(after.hook).toBeGreaterThanOrEqual(kept.hook);
    // The page shows the zeros: every natfarm rule of the farm reads 0.
    const farmRows = page.getByRole("row").filter({ has: page.getByRole("link", { name: new RegExp(`^${FARM}( #\\d)?$`) }) });
    await expectVisible(farmRows.first());
    await expect.poll(async () => (await packetsOf(farmRows)).every((n) => n === 0), { timeout: 10_000 }).toBe(true);
    expect(c.query("SELECT actor, via, farm, result FROM AuditEntry WHERE action = 'reset counters'")).toEqual([{ actor: "admin", via: "session", farm: null, result: "ok" }]);

    // The farm page resets that farm's counters only.
    expect((await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 10 })).failed).toBe(0);
    await page.goto(url(`/farms/${FARM}`));
    await page.getByRole("button", { name: `Reset counters of farm ${FARM}` }).click();
    const farmDialog = page.getByRole("dialog", { name: `Reset farm ${FARM}'s counters?` });
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
    await farmDialog.getByRole("button", { name: "Reset counters" }).click();
    await expectText(toastsOf(page, "success").filter({ hasText: `Reset farm ${FARM}'s` }), /which had counted [1-9]/, { timeout: 30_000 });
    expect(sum(await dnatCounters())).toBe(0);

    // The admin's exact request, stopped before it reaches the server, then sent with a viewer's session.
    await page.goto(url("/tables"));
    await reset.click();
    const captured = await captureAction(page, c.baseUrl, () => dialog.getByRole("button", { name: "Reset counters" }).click());
    expect((await labTraffic({ name: c.lab.name, vip: VIP, port: 443, connections: 20 })).failed).toBe(0);
    await c.loginAs("viewer");
    await page.goto(url("/tables"));
    await expectVisible(page.getByTestId("live-tables"));
    expect(await page.getByRole("button", { name: /Reset/ }).count()).toBe(0);
    const r = await request(url(captured.path), { method: "POST", headers: replayHeaders(captured, await c.cookieHeader()), body: captured.body, insecure: true, timeoutMs: 30_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/needs the operator role/);
    expect(sum(await dnatCounters())).toBe(20);
    await c.loginAs("admin");
  });
});
