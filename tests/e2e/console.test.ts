import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Locator, Page, Route } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TablesSnapshot } from "../../lib/applier/index.ts";
import { formatProbability, ruleProbabilities } from "../../lib/netfilter/probability.ts";
import { namespacesOf, screenshotDir, startConsole, type Console } from "./harness.ts";
import { describers, expectAttribute, expectCount, expectDescription, expectHidden, expectNoText, expectText, expectUrl, expectValue, expectVisible, textOf, toastsOf } from "./ui-expect.ts";

/**
 * The console end to end: the built app on 127.0.0.1, its own SQLite file and
 * lab, driven through Chromium by role and accessible name. Every scenario
 * checks what the operator sees AND what the kernel (the lab's load balancer)
 * and the database really hold. One file, run in order: each scenario starts
 * from the state the previous one left.
 */

const VIP = "198.51.100.250";
const PORT = 80;
const FARM = "web";
const B0 = { ip: "203.0.113.10", port: 80 };
const B1 = { ip: "203.0.113.11", port: 80 };
const SHOTS = screenshotDir();
const FAILURES = path.join(os.tmpdir(), "natfarm-e2e-failures");

let c: Console;
let page: Page;
const pageErrors: string[] = [];
const timings: Record<string, number> = {};

beforeAll(async () => {
  const t = performance.now();
  c = await startConsole({ backends: 2, log: (m) => console.log(`[e2e] ${m}`) });
  page = c.page;
  c.context.on("page", (p) => p.on("pageerror", (e) => pageErrors.push(`${p.url()}: ${e.message}`)));
  page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  timings.setupMs = performance.now() - t;
}, 600_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail" && page) {
    // What the browser showed when it failed, for the person reading the CI log.
    fs.mkdirSync(FAILURES, { recursive: true });
    const base = path.join(FAILURES, ctx.task.name.replace(/\W+/g, "-").slice(0, 60));
    await page.screenshot({ path: `${base}.png`, fullPage: true }).catch(() => {});
    fs.writeFileSync(`${base}.html`, await page.content().catch(() => ""));
    fs.writeFileSync(`${base}.server.log`, c.logTail(20_000));
    console.log(`[e2e] failure artifacts: ${base}.{png,html,server.log} (page ${page.url()})`);
  }
  // An uncaught exception in the browser is a failure even when the page looked right.
  const errors = pageErrors.splice(0);
  expect(errors, "uncaught errors in the page").toEqual([]);
});

afterAll(async () => {
  if (!c) return;
  const labName = c.lab.name;
  const t = performance.now();
  try {
    await c.stop();
  } finally {
    timings.teardownMs = performance.now() - t;
    console.log(`[e2e] timings (ms): ${JSON.stringify({ ...c.timings, ...timings }, (_, v) => (typeof v === "number" ? Math.round(v) : v))}`);
  }
  expect(namespacesOf(labName), "namespaces left behind").toEqual([]);
}, 120_000);

// ---------------------------------------------------------------- helpers

const url = (p: string) => `${c.baseUrl}${p}`;

const toasts = (p: Page = page, type?: "success" | "error") => toastsOf(p, type);

/** Dismisses every toast so the next assertion sees only new ones. */
async function clearToasts(p: Page = page): Promise<void> {
  for (const close of await p.getByRole("button", { name: /close toast/i }).all()) await close.click({ timeout: 2000 }).catch(() => {});
  await expectCount(toasts(p), 0, { timeout: 10_000 });
}

/** A table's body rows as records keyed by column header text. */
async function readTable(table: Locator): Promise<Record<string, string>[]> {
  await table.waitFor();
  const headers = (await table.getByRole("columnheader").allInnerTexts()).map((h) => h.trim());
  const out: Record<string, string>[] = [];
  for (const row of await table.locator("tbody").getByRole("row").all()) {
    const cells = (await row.getByRole("cell").allInnerTexts()).map((x) => x.trim());
    if (cells.length !== headers.length) continue; // "empty" placeholder rows
    out.push(Object.fromEntries(headers.map((h, i) => [h.toLowerCase(), cells[i]!])));
  }
  return out;
}

/** natfarm's rules in the kernel, without counters: what must not change when the console refuses something. */
function ruleSpecs(s: TablesSnapshot): string[] {
  return s.tables.flatMap((t) => t.chains.flatMap((ch) => ch.rules.filter((r) => r.owned).map((r) => `${t.name} ${r.spec}`)));
}

function farmRules(s: TablesSnapshot, table: string, chainPrefix: string, farm = FARM) {
  return s.tables
    .find((t) => t.name === table)!
    .chains.filter((ch) => ch.name.startsWith(chainPrefix))
    .flatMap((ch) => ch.rules)
    .filter((r) => r.farm === farm);
}

async function gotoFarm(name = FARM): Promise<void> {
  await page.goto(url(`/farms/${encodeURIComponent(name)}`));
  await expectText(page.getByRole("heading", { level: 1 }), name);
}

function generatedRules(p: Page = page): Locator {
  return p.getByRole("region", { name: "Generated rules" }).locator("pre");
}

function ruleLine(text: string, comment: string, target: string): string | undefined {
  return text.split("\n").find((l) => l.includes(`--comment ${comment} `) && l.includes(`-j ${target}`));
}

function backendsTable(p: Page = page): Locator {
  return p.getByRole("table", { name: `Backends of ${FARM}` });
}

interface LabRow {
  backend: string;
  count: number;
  observed: number;
  sources: string;
}

/** Sends connections from the Lab page and returns its per-backend results. */
async function labRun(connections: number, p: Page = page): Promise<{ rows: LabRow[]; summary: string }> {
  await p.goto(url("/lab"));
  // The page's one traffic form (its card title is wording, its controls are the contract).
  const form = p.getByRole("main");
  await form.getByLabel("Farm", { exact: true }).selectOption(FARM);
  await form.getByLabel("Connections", { exact: true }).fill(String(connections));
  await form.getByRole("button", { name: "Send connections" }).click();
  const table = p.getByRole("table", { name: `Lab results for ${FARM}` });
  await table.waitFor({ timeout: 120_000 });
  const rows = (await readTable(table)).map((r) => ({
    backend: r.backend!,
    count: Number(r.connections),
    observed: Number.parseFloat(r.observed!) / 100,
    sources: r["source the backend saw"]!,
  }));
  const summary = await form.getByText(/connections to/).innerText();
  return { rows, summary };
}

/** "198.51.100.2 (97), …" → { "198.51.100.2": 97, … } */
function sourcesOf(r: LabRow): Record<string, number> {
  return Object.fromEntries([...r.sources.matchAll(/([\d.]+) \((\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
}

function rowOf(rows: LabRow[], b: { ip: string; port: number }): LabRow {
  const r = rows.find((x) => x.backend.startsWith(`${b.ip}:${b.port}`));
  if (!r) throw new Error(`no lab result for ${b.ip}:${b.port} in ${JSON.stringify(rows)}`);
  return r;
}

/** Packet counters of one farm's rules as the Live tables page shows them (exact count in the cell's title). */
async function liveCounters(p: Page, tableName: RegExp, comment: string): Promise<number> {
  const tables = p.getByRole("table", { name: tableName });
  const row = tables.getByRole("row").filter({ hasText: `--comment ${comment} ` });
  await expectCount(row, 1);
  const cell = row.getByRole("cell").first();
  const exact = await cell.getAttribute("title");
  return Number(exact ?? (await cell.innerText()));
}

/** The control's error message is one of its describers and sits in (or is) an aria-live region. */
async function expectLiveError(control: Locator, want: RegExp): Promise<void> {
  let found = "";
  for (const d of await describers(control)) {
    const text = await textOf(d);
    if (!want.test(text) || !text.trim()) continue;
    found = text;
    const live = await d.evaluate((el) => el.closest("[aria-live]")?.getAttribute("aria-live") ?? (el.closest('[role="alert"],[role="status"]') ? "role" : null));
    expect(live, `error "${text}" is not announced (no aria-live region)`).toMatch(/polite|assertive|role/);
  }
  expect(found, "no describing element carries the error").not.toBe("");
}

async function editWeight(b: { ip: string; port: number }, weight: string): Promise<Locator> {
  const table = backendsTable();
  const who = `${b.ip}:${b.port}`;
  await table.getByRole("button", { name: `Edit backend ${who}` }).click();
  const input = table.getByLabel(`Weight of backend ${who}`, { exact: true });
  await input.fill(weight);
  await table.getByRole("button", { name: `Save backend ${who}` }).click();
  return input;
}

// ---------------------------------------------------------------- scenarios

describe.sequential("console end to end", () => {
  it("1. creates a farm with 2 backends through the UI and shows the rules in the guide's shape", async () => {
    await page.goto(url("/"));
    await expectCount(page.getByRole("link", { name: FARM, exact: true }), 0);
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill(FARM);
    await form.getByLabel("Virtual IP").fill(VIP);
    await form.getByLabel("Ports", { exact: true }).fill(String(PORT));
    await form.getByLabel("Protocol").selectOption("tcp");
    await form.getByLabel("NAT type").selectOption("dnat");
    const fill = async (n: number, b: { ip: string; port: number }) => {
      const row = form.getByRole("group", { name: `Backend ${n}` });
      await row.getByLabel(`IP address of backend ${n}`).fill(b.ip);
      await row.getByLabel(`Port of backend ${n}`).fill(String(b.port));
      await row.getByLabel(`Weight of backend ${n}`).fill("1");
    };
    await fill(1, B0);
    await form.getByRole("button", { name: "Add backend row" }).click();
    await fill(2, B1);
    await form.getByRole("button", { name: "Create farm" }).click();

    await expectCount(toasts(page, "success").filter({ hasText: FARM }), 1, { timeout: 60_000 });
    const link = page.getByRole("table", { name: "Farms" }).getByRole("link", { name: FARM, exact: true });
    await expectVisible(link);
    const listRow = page.getByRole("table", { name: "Farms" }).getByRole("row").filter({ has: page.getByRole("link", { name: FARM, exact: true }) });
    await expectText(listRow, `${VIP}:${PORT}`);
    await expectText(listRow, "DNAT");
    await expectText(listRow, "running");

    await link.click();
    await expectUrl(page, url(`/farms/${FARM}`));
    await expectText(page.getByRole("heading", { level: 1 }), "running");

    const backends = await readTable(backendsTable());
    expect(backends.map((b) => `${b["ip address"]}:${b.port}`)).toEqual([`${B0.ip}:${B0.port}`, `${B1.ip}:${B1.port}`]);
    expect(backends.map((b) => b["share of new connections"])).toEqual(["50.0 %", "50.0 %"]);

    // The guide's layout: last backend first with probability 1, then 1/2; the
    // connection mark picks the DNAT rule of the same backend.
    const rules = await generatedRules().innerText();
    const mark1 = ruleLine(rules, `FARM_${FARM}_1_`, "MARK");
    const mark0 = ruleLine(rules, `FARM_${FARM}_0_`, "MARK");
    expect(mark1).toContain("--probability 1.00000000000");
    expect(mark0).toContain("--probability 0.50000000000");
    for (const m of [mark0!, mark1!]) {
      expect(m).toContain(`-d ${VIP}/32`);
      expect(m).toContain(`--dports ${PORT}`);
    }
    expect(rules.indexOf(mark1!)).toBeLessThan(rules.indexOf(mark0!));
    expect(ruleLine(rules, `FARM_${FARM}_0_`, "DNAT")).toContain(`--to-destination ${B0.ip}:${B0.port}`);
    expect(ruleLine(rules, `FARM_${FARM}_1_`, "DNAT")).toContain(`--to-destination ${B1.ip}:${B1.port}`);
    expect(rules).not.toContain("-j SNAT");
    // Each backend's MARK value is the one its DNAT rule matches, and the one the Backends table shows.
    const marks = [0, 1].map((k) => {
      const set = /--set-xmark (0x[0-9a-f]+)\//.exec(ruleLine(rules, `FARM_${FARM}_${k}_`, "MARK")!)?.[1];
      const matched = /--mark (0x[0-9a-f]+) /.exec(ruleLine(rules, `FARM_${FARM}_${k}_`, "DNAT")!)?.[1];
      expect(set).toBeDefined();
      expect(matched).toBe(set);
      return set!;
    });
    expect(new Set(marks).size).toBe(2);
    expect(backends.map((b) => b.mark)).toEqual(marks);

    // What the page says is what the database and the kernel hold.
    const farms = c.query<{ name: string; mode: string; applyState: string }>("SELECT name, mode, applyState FROM Farm");
    expect(farms).toEqual([{ name: FARM, mode: "dnat", applyState: "applied" }]);
    const live = await c.tables();
    expect(farmRules(live, "mangle", "NATFARM-F-").map((r) => r.backend).sort()).toEqual([0, 1]);
    expect(farmRules(live, "nat", "NATFARM-DST-")).toHaveLength(2);
  });

  it("2. shows the MARK and DNAT rows in Live tables and their counters rise with lab traffic (auto-refresh)", async () => {
    // A second tab stays on Live tables and is never reloaded: only the 2 s refresh can move its counters.
    const tables = await c.context.newPage();
    try {
      await tables.goto(url("/tables"));
      await expectVisible(tables.getByRole("heading", { level: 1, name: "Live tables" }));
      const mangle = /^mangle NATFARM-F-/;
      const nat = /^nat NATFARM-DST-[0-9a-f]{4}$/;
      for (const k of [0, 1]) {
        const markRow = tables.getByRole("table", { name: mangle }).getByRole("row").filter({ hasText: `--comment FARM_${FARM}_${k}_ ` });
        await expectText(markRow, "-j MARK");
        // Backends are numbered from 1 on every page (the rule comment keeps the guide's 0-based index).
        await expectVisible(markRow.getByRole("link", { name: `${FARM} #${k + 1}` }));
        const dnatRow = tables.getByRole("table", { name: nat }).getByRole("row").filter({ hasText: `--comment FARM_${FARM}_${k}_ ` });
        await expectText(dnatRow, `--to-destination ${[B0, B1][k]!.ip}:${PORT}`);
      }
      const before = [await liveCounters(tables, nat, `FARM_${FARM}_0_`), await liveCounters(tables, nat, `FARM_${FARM}_1_`)];

      const { rows, summary } = await labRun(200);
      expect(summary).toMatch(/^200 of 200 tcp connections/);
      const r0 = rowOf(rows, B0);
      const r1 = rowOf(rows, B1);
      expect(r0.count + r1.count).toBe(200);
      expect(r0.count).toBeGreaterThan(0);
      expect(r1.count).toBeGreaterThan(0);
      // DNAT: backends see the client itself.
      expect(sourcesOf(r0)).toEqual({ [c.lab.clientIp]: r0.count });
      expect(sourcesOf(r1)).toEqual({ [c.lab.clientIp]: r1.count });

      // nat rules see the first packet of each connection: each DNAT counter
      // rises by exactly the connections that backend answered.
      await expect
        .poll(async () => [await liveCounters(tables, nat, `FARM_${FARM}_0_`), await liveCounters(tables, nat, `FARM_${FARM}_1_`)], { timeout: 15_000, interval: 500 })
        .toEqual([before[0]! + r0.count, before[1]! + r1.count]);
      expect(await liveCounters(tables, mangle, `FARM_${FARM}_1_`)).toBeGreaterThanOrEqual(200);
    } finally {
      await tables.close();
    }
  });

  it("3. switches to NAT after a confirmation listing the SNAT rules, and backends then see the VIP", async () => {
    await gotoFarm();
    const dialog = page.getByRole("dialog", { name: `Switch farm ${FARM} to NAT?` });
    // Escape backs out: nothing is applied.
    const specsUntouched = ruleSpecs(await c.tables());
    await page.getByRole("button", { name: "Switch to NAT" }).click();
    await expectVisible(dialog);
    await page.keyboard.press("Escape");
    await expectHidden(dialog);
    expect(c.query("SELECT mode FROM Farm WHERE name = ?", FARM)).toEqual([{ mode: "dnat" }]);
    expect(ruleSpecs(await c.tables())).toEqual(specsUntouched);

    await page.getByRole("button", { name: "Switch to NAT" }).click();
    await expectVisible(dialog);
    const changes = dialog.getByLabel("Rule changes");
    // One element per rule line; assistive technology hears "appears:" / "disappears:" before it.
    const lines = changes.locator(":scope > *");
    const appearing = (await lines.filter({ has: page.getByText(/^appears:/) }).allTextContents()).map((t) => t.trim());
    expect(await lines.filter({ has: page.getByText(/^disappears:/) }).count()).toBe(0);
    expect(appearing).toHaveLength(2);
    for (const [k, line] of appearing.entries()) {
      expect(line).toContain(`--comment FARM_${FARM}_${k}_ `);
      expect(line).toContain(`-j SNAT --to-source ${VIP}`);
    }
    await expectText(dialog, "2 rules appear, 0 disappear");
    const specsBefore = ruleSpecs(await c.tables());
    await clearToasts();
    await dialog.getByRole("button", { name: "Switch to NAT" }).click();
    await expectCount(toasts(page, "success"), 1, { timeout: 60_000 });
    // The toast says what happened, and counts the rules the preview counted.
    await expectText(toasts(page, "success"), `Farm ${FARM} switched to NAT`);
    await expectText(toasts(page, "success"), "2 rules added, 0 rules removed");
    await expectHidden(dialog);
    await expectText(page.getByRole("heading", { level: 1 }), "NAT");
    // The NAT type is stated as text, not drawn as a two-part control that looks like a toggle.
    await expectText(page.getByTestId("current-mode"), "NAT");
    expect(await page.getByRole("region", { name: "NAT type" }).getByRole("group").count()).toBe(0);
    await expectText(generatedRules(), `-j SNAT --to-source ${VIP}`);

    // The SNAT rows on Live tables, and only SNAT rows were added.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Live tables" }).click();
    const snat = page.getByRole("table", { name: /^nat NATFARM-SRC-[0-9a-f]{4}$/ });
    for (const k of [0, 1]) {
      await expectText(snat.getByRole("row").filter({ hasText: `--comment FARM_${FARM}_${k}_ ` }), `--to-source ${VIP}`);
    }
    const specsAfter = ruleSpecs(await c.tables());
    const added = specsAfter.filter((s) => !specsBefore.includes(s));
    expect(specsBefore.filter((s) => !specsAfter.includes(s))).toEqual([]);
    expect(added.filter((s) => s.includes(`FARM_${FARM}_`))).toHaveLength(2);
    expect(added.filter((s) => s.includes(`FARM_${FARM}_`)).every((s) => s.includes("-j SNAT"))).toBe(true);
    expect(c.query("SELECT mode FROM Farm WHERE name = ?", FARM)).toEqual([{ mode: "nat" }]);

    const { rows, summary } = await labRun(100);
    expect(summary).toMatch(/^100 of 100 tcp connections/);
    for (const b of [B0, B1]) {
      const r = rowOf(rows, b);
      expect(r.count).toBeGreaterThan(0);
      // Every connection this backend answered came from the VIP, none from the client.
      expect(sourcesOf(r)).toEqual({ [VIP]: r.count });
    }
  });

  it("4. changes the weights to 3:1 and the lab's shares follow", async () => {
    await gotoFarm();
    await clearToasts();
    await editWeight(B0, "3");
    await expectCount(toasts(page, "success"), 1, { timeout: 60_000 });
    await expect
      .poll(async () => (await readTable(backendsTable())).map((b) => [b.weight, b["share of new connections"]]))
      .toEqual([
        ["3", "75.0 %"],
        ["1", "25.0 %"],
      ]);
    const p = ruleProbabilities([3, 1]).map(formatProbability);
    const rules = await generatedRules().innerText();
    expect(ruleLine(rules, `FARM_${FARM}_0_`, "MARK")).toContain(`--probability ${p[0]}`);
    expect(ruleLine(rules, `FARM_${FARM}_1_`, "MARK")).toContain(`--probability ${p[1]}`);
    const live = farmRules(await c.tables(), "mangle", "NATFARM-F-");
    expect(live.find((r) => r.backend === 0)?.spec).toContain(`--probability ${p[0]}`);
    expect(c.query("SELECT b.weight FROM Backend b JOIN Farm f ON f.id = b.farmId ORDER BY b.position")).toEqual([{ weight: 3 }, { weight: 1 }]);

    const { rows, summary } = await labRun(400);
    expect(summary).toMatch(/^400 of 400 tcp connections/);
    const r0 = rowOf(rows, B0);
    const r1 = rowOf(rows, B1);
    expect(r0.count + r1.count).toBe(400);
    // 3:1 is 75 %; 60..90 % holds with overwhelming probability for 400 draws (±6.9 sd).
    expect(r0.count / 400).toBeGreaterThan(0.6);
    expect(r0.count / 400).toBeLessThan(0.9);
  });

  it("5. a bad value shows a field error and changes nothing (page, database, kernel)", async () => {
    const dbBefore = c.query("SELECT f.name, f.vip, f.mode, b.ip, b.port, b.weight FROM Farm f JOIN Backend b ON b.farmId = f.id ORDER BY f.name, b.position");
    const kernelBefore = ruleSpecs(await c.tables());

    // Weight 0 on an existing backend.
    await gotoFarm();
    const weight = await editWeight(B0, "0");
    await expectAttribute(weight, "aria-invalid", "true");
    await expectDescription(weight, /weight/i);
    await expectLiveError(weight, /weight/i);
    await expectCount(toasts(page, "success"), 0);
    await backendsTable().getByRole("button", { name: `Cancel editing backend ${B0.ip}:${B0.port}` }).click();
    await page.reload();
    expect((await readTable(backendsTable())).map((b) => b.weight)).toEqual(["3", "1"]);

    // An impossible VIP on a new farm.
    await page.goto(url("/"));
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill("bad");
    await form.getByLabel("Virtual IP").fill("1.2.3.999");
    await form.getByLabel("Ports", { exact: true }).fill("80");
    const row = form.getByRole("group", { name: "Backend 1" });
    await row.getByLabel("IP address of backend 1").fill(B0.ip);
    await row.getByLabel("Port of backend 1").fill("8080");
    await form.getByRole("button", { name: "Create farm" }).click();
    const vip = form.getByLabel("Virtual IP");
    await expectAttribute(vip, "aria-invalid", "true");
    await expectDescription(vip, /IPv4|address|1\.2\.3\.999/i);
    await expectLiveError(vip, /\S/);
    // The form keeps what was typed, and only the VIP is blamed.
    await expectValue(vip, "1.2.3.999");
    await expectAttribute(form.getByLabel("Name", { exact: true }), "aria-invalid", null);
    await expectCount(page.getByRole("table", { name: "Farms" }).getByRole("link", { name: "bad", exact: true }), 0);

    expect(c.query("SELECT f.name, f.vip, f.mode, b.ip, b.port, b.weight FROM Farm f JOIN Backend b ON b.farmId = f.id ORDER BY f.name, b.position")).toEqual(dbBefore);
    expect(ruleSpecs(await c.tables())).toEqual(kernelBefore);
  });

  it("6. an injected iptables failure shows iptables' message, marks the farm failed, and re-apply recovers", async () => {
    await gotoFarm();
    const kernelBefore = ruleSpecs(await c.tables());
    fs.writeFileSync(c.faultFile, "nat");
    try {
      await clearToasts();
      await editWeight(B1, "2");
      const error = toasts(page, "error");
      await expectCount(error, 1, { timeout: 60_000 });
      // iptables' own words: the refused line of the payload.
      await expectText(error, /iptables-restore|NATFARM-INJECTED-FAULT|Couldn't load target/);
      await expectCount(toasts(page, "success"), 0);

      await page.reload();
      await expectText(page.getByRole("heading", { level: 1 }), "apply failed");
      const alert = page.getByRole("alert").filter({ hasText: "Apply failed" });
      await expectVisible(alert);
      const stored = c.query<{ applyState: string; applyError: string }>("SELECT applyState, applyError FROM Farm WHERE name = ?", FARM)[0]!;
      expect(stored.applyState).toBe("failed");
      await expectText(alert, stored.applyError.split("\n")[0]!.trim());
      // The change is saved but the kernel kept the previous rules (rolled back).
      expect((await readTable(backendsTable())).map((b) => b.weight)).toEqual(["3", "2"]);
      expect(ruleSpecs(await c.tables())).toEqual(kernelBefore);

      await page.goto(url("/"));
      const listRow = page.getByRole("table", { name: "Farms" }).getByRole("row").filter({ has: page.getByRole("link", { name: FARM, exact: true }) });
      await expectText(listRow, "apply failed");

      await page.goto(url("/history"));
      const history = await readTable(page.getByRole("table", { name: "Apply log" }));
      expect(history[0]).toMatchObject({ farms: FARM, result: "failed" });
    } finally {
      fs.rmSync(c.faultFile, { force: true });
    }

    await gotoFarm();
    await clearToasts();
    const failedAlert = page.getByRole("alert").filter({ hasText: "Apply failed" });
    await failedAlert.getByRole("button", { name: "Re-apply" }).click();
    // The alert goes once the kernel holds the farm again, and the button's result is announced.
    await expectCount(failedAlert, 0, { timeout: 60_000 });
    await page.reload();
    await expectText(page.getByRole("heading", { level: 1 }), "running");
    await expectCount(page.getByRole("alert").filter({ hasText: "Apply failed" }), 0);
    expect(c.query("SELECT applyState FROM Farm WHERE name = ?", FARM)).toEqual([{ applyState: "applied" }]);
    const p = ruleProbabilities([3, 2]).map(formatProbability);
    expect(farmRules(await c.tables(), "mangle", "NATFARM-F-").find((r) => r.backend === 0)?.spec).toContain(`--probability ${p[0]}`);
    const { summary } = await labRun(50);
    expect(summary).toMatch(/^50 of 50 tcp connections/);
  });

  it("6b. re-apply from the failed-apply alert announces its success", async () => {
    fs.writeFileSync(c.faultFile, "nat");
    await gotoFarm();
    await page.getByRole("button", { name: "Stop farm" }).click();
    await page.getByRole("dialog", { name: `Stop farm ${FARM}?` }).getByRole("button", { name: "Stop farm" }).click();
    await expectCount(page.getByRole("alert").filter({ hasText: "Apply failed" }), 1, { timeout: 60_000 });
    fs.rmSync(c.faultFile, { force: true });
    await clearToasts();
    await page.getByRole("alert").filter({ hasText: "Apply failed" }).getByRole("button", { name: "Re-apply" }).click();
    await expectCount(toasts(page, "success"), 1, { timeout: 60_000 });
    await page.getByRole("button", { name: "Start farm" }).click();
    await expectText(page.getByRole("heading", { level: 1 }), "running", { timeout: 60_000 });
  });


  it("7. screenshots every page in light and dark", async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    const pages: { name: string; path: string; ready: (p: Page) => Promise<void> }[] = [
      { name: "farms", path: "/", ready: async (p) => void (await p.getByRole("link", { name: FARM, exact: true }).waitFor()) },
      {
        name: "farm-detail",
        path: `/farms/${FARM}`,
        ready: async (p) => {
          await generatedRules(p).waitFor();
          // The live panels fill in after the page: give them a moment so the picture shows data (not asserted here).
          await p.getByText(/^(Reading conntrack…|Loading…)$/).first().waitFor({ state: "hidden", timeout: 10_000 }).catch(() => {});
        },
      },
      { name: "live-tables", path: "/tables", ready: async (p) => void (await p.getByRole("table", { name: /^nat NATFARM-SRC-[0-9a-f]{4}$/ }).waitFor()) },
      { name: "lab", path: "/lab", ready: async (p) => void (await labRun(200, p)) },
      { name: "history", path: "/history", ready: async (p) => void (await p.getByRole("table", { name: "Apply log" }).getByRole("row").nth(1).waitFor()) },
    ];
    const background = (p: Page) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    for (const shot of pages) {
      await page.emulateMedia({ colorScheme: "light" });
      await page.goto(url(shot.path));
      await shot.ready(page);
      await clearToasts();
      await expectAttribute(page.locator("html"), "data-theme", "light");
      const light = await background(page);
      await page.screenshot({ path: path.join(SHOTS, `${shot.name}-light.png`), fullPage: true });

      // The console follows the OS scheme while the operator has not picked one.
      await page.emulateMedia({ colorScheme: "dark" });
      await expectAttribute(page.locator("html"), "data-theme", "dark");
      expect(await background(page)).not.toBe(light);
      await page.screenshot({ path: path.join(SHOTS, `${shot.name}-dark.png`), fullPage: true });
    }
    // The operator's own pick wins over the OS and survives a reload.
    await page.emulateMedia({ colorScheme: "light" });
    await page.goto(url("/"));
    await expectAttribute(page.locator("html"), "data-theme", "light");
    await page.getByRole("button", { name: "Switch to dark theme" }).click();
    await expectAttribute(page.locator("html"), "data-theme", "dark");
    await page.reload();
    await expectAttribute(page.locator("html"), "data-theme", "dark");
    await page.getByRole("button", { name: "Switch to light theme" }).click();
    await expectAttribute(page.locator("html"), "data-theme", "light");

    for (const f of fs.readdirSync(SHOTS).filter((f) => f.endsWith(".png"))) {
      const size = fs.statSync(path.join(SHOTS, f)).size;
      expect(size, f).toBeGreaterThan(5_000);
    }
  });
  // ------------------------------------------------------------ issue 11: safe destructive actions, feedback, defects

  it("8. every confirmation opens on Cancel: Enter on the trigger and Enter again change nothing", async () => {
    const dbBefore = c.query("SELECT f.name, f.status, b.ip, b.state FROM Farm f JOIN Backend b ON b.farmId = f.id ORDER BY f.name, b.position");
    const kernelBefore = ruleSpecs(await c.tables());
    const tryTwice = async (trigger: Locator, dialog: string) => {
      await trigger.focus();
      await page.keyboard.press("Enter");
      const d = page.getByRole("dialog", { name: dialog });
      await expectVisible(d);
      await expect.poll(() => page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
      await page.keyboard.press("Enter");
      await expectHidden(d);
    };
    await gotoFarm();
    await tryTwice(page.getByRole("button", { name: "Stop farm" }), `Stop farm ${FARM}?`);
    await tryTwice(page.getByRole("button", { name: "Delete farm" }), `Delete farm ${FARM}?`);
    await tryTwice(backendsTable().getByRole("button", { name: `Cut backend ${B0.ip}:${B0.port}` }), `Cut backend ${B0.ip}:${B0.port}?`);
    await tryTwice(backendsTable().getByRole("button", { name: `Remove backend ${B1.ip}:${B1.port}` }), `Remove backend ${B1.ip}:${B1.port}?`);
    await page.goto(url("/"));
    await tryTwice(page.getByRole("button", { name: "Apply all" }), "Apply all farms?");
    expect(c.query("SELECT f.name, f.status, b.ip, b.state FROM Farm f JOIN Backend b ON b.farmId = f.id ORDER BY f.name, b.position")).toEqual(dbBefore);
    expect(ruleSpecs(await c.tables())).toEqual(kernelBefore);
  });

  it("9. Stop farm names its consequences; a stopped farm shows no shares or probabilities; backends are numbered from 1", async () => {
    await gotoFarm();
    expect((await readTable(backendsTable())).map((b) => b["#"])).toEqual(["1", "2"]);
    await page.getByRole("button", { name: "Stop farm" }).click();
    const dialog = page.getByRole("dialog", { name: `Stop farm ${FARM}?` });
    await expectText(dialog, `${VIP}:${PORT}`);
    await expectText(dialog, "no longer balanced");
    await clearToasts();
    await dialog.getByRole("button", { name: "Stop farm" }).click();
    await expectText(toasts(page, "success"), `Farm ${FARM} stopped: its rules left the kernel`, { timeout: 60_000 });
    await expectText(page.getByRole("heading", { level: 1 }), "stopped");
    await expect.poll(async () => (await readTable(backendsTable())).map((b) => [b["share of new connections"], b["rule probability"]])).toEqual([
      ["none: farm stopped", "no rule"],
      ["none: farm stopped", "no rule"],
    ]);
    expect(farmRules(await c.tables(), "mangle", "NATFARM-F-")).toEqual([]);
    await page.getByRole("button", { name: "Start farm" }).click();
    await expectText(page.getByRole("heading", { level: 1 }), "running", { timeout: 60_000 });
    await expect.poll(async () => (await readTable(backendsTable())).map((b) => b["share of new connections"])).toEqual(["60.0 %", "40.0 %"]);
  });

  it("10. Settings: Reset after a refused save shows the saved values; the health-check box and its fields agree; a save shows what was saved", async () => {
    await gotoFarm();
    const form = page.getByRole("form", { name: `Settings of ${FARM}` });
    const box = form.getByLabel("Enable health check");
    expect(await box.isChecked()).toBe(false);
    await form.getByLabel("Ports", { exact: true }).fill("81");
    await box.check();
    await form.getByLabel("Interval (s)").fill("abc");
    await form.getByRole("button", { name: "Save settings" }).click();
    await expectAttribute(form.getByLabel("Interval (s)"), "aria-invalid", "true");
    await expectValue(form.getByLabel("Ports", { exact: true }), "81");
    // Reset: the saved settings, not the refused ones; no check, so no check fields.
    await form.getByRole("button", { name: "Reset" }).click();
    await expectValue(form.getByLabel("Ports", { exact: true }), String(PORT));
    expect(await box.isChecked()).toBe(false);
    await expectCount(form.getByLabel("Interval (s)"), 0);
    expect(c.query("SELECT ports, healthcheck FROM Farm WHERE name = ?", FARM)).toEqual([{ ports: String(PORT), healthcheck: null }]);

    await clearToasts();
    await box.check();
    await form.getByLabel("Interval (s)").fill("5");
    await form.getByRole("button", { name: "Save settings" }).click();
    await expectText(toasts(page, "success"), "health check enabled (tcp every 5 s)", { timeout: 60_000 });
    // Without a reload: the box stays ticked and its fields show what was saved.
    await expect.poll(() => box.isChecked()).toBe(true);
    await expectValue(form.getByLabel("Interval (s)"), "5");
    await page.goto(url("/history"));
    const log = await readTable(page.getByRole("table", { name: "Apply log" }));
    expect(log[0]).toMatchObject({ action: "settings: health check enabled (tcp every 5 s)", result: "no rule change" });

    await gotoFarm();
    await page.getByRole("form", { name: `Settings of ${FARM}` }).getByLabel("Enable health check").uncheck();
    await clearToasts();
    await page.getByRole("form", { name: `Settings of ${FARM}` }).getByRole("button", { name: "Save settings" }).click();
    await expectText(toasts(page, "success"), "health check disabled", { timeout: 60_000 });
    await expectCount(page.getByRole("form", { name: `Settings of ${FARM}` }).getByLabel("Interval (s)"), 0);
  });

  it("11. the new-farm form reports port 0, a duplicate backend and an overlap with another farm at once", async () => {
    await page.goto(url("/"));
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill("clash");
    await form.getByLabel("Virtual IP").fill(VIP);
    await form.getByLabel("Ports", { exact: true }).fill(String(PORT));
    for (let n = 1; n <= 3; n++) {
      if (n > 1) await form.getByRole("button", { name: "Add backend row" }).click();
      const row = form.getByRole("group", { name: `Backend ${n}` });
      await row.getByLabel(`IP address of backend ${n}`).fill(n === 1 ? B0.ip : B1.ip);
      await row.getByLabel(`Port of backend ${n}`).fill(n === 1 ? "0" : "80");
    }
    await form.getByRole("button", { name: "Create farm" }).click();
    const ports = form.getByLabel("Ports", { exact: true });
    await expectAttribute(ports, "aria-invalid", "true");
    await expectDescription(ports, /overlaps farm "web"/);
    await expectDescription(form.getByLabel("Port of backend 1"), /port must be a whole number from 1 to 65535/);
    await expectDescription(form.getByLabel("IP address of backend 3"), /duplicate backend 203\.0\.113\.11:80 \(same as backend 2\)/);
    await expectAttribute(form.getByLabel("Virtual IP"), "aria-invalid", null);
    expect(c.query("SELECT name FROM Farm WHERE name = 'clash'")).toEqual([]);
  });

  it("12. drain, cut and edit say what happened and History names the backend", async () => {
    await gotoFarm();
    const who0 = `${B0.ip}:${B0.port}`;
    await clearToasts();
    await backendsTable().getByRole("button", { name: `Drain backend ${who0}` }).click();
    await expectText(toasts(page, "success"), `Backend ${who0} of farm ${FARM} is draining: no new connections, open ones continue.`, { timeout: 60_000 });
    await expectText(page.getByRole("heading", { level: 1 }), "degraded");
    await backendsTable().getByRole("button", { name: `Back in service: backend ${who0}` }).click();
    await expectText(page.getByRole("heading", { level: 1 }), "running", { timeout: 60_000 });
    await clearToasts();
    await backendsTable().getByRole("button", { name: `Cut backend ${who0}` }).click();
    const cut = page.getByRole("dialog", { name: `Cut backend ${who0}?` });
    await expectText(cut, "open right now");
    await cut.getByRole("button", { name: "Cut connections" }).click();
    await expectText(toasts(page, "success"), /is in maintenance: no new connections\. (It held no open connection|\d+ open connections? cut)\./, { timeout: 60_000 });
    await backendsTable().getByRole("button", { name: `Back in service: backend ${who0}` }).click();
    await expectText(page.getByRole("heading", { level: 1 }), "running", { timeout: 60_000 });
    await clearToasts();
    await editWeight(B1, "1");
    await expectText(toasts(page, "success"), `Backend ${B1.ip}:${B1.port} of farm ${FARM}: weight 2 → 1.`, { timeout: 60_000 });
    await page.goto(url("/history"));
    const actions = (await readTable(page.getByRole("table", { name: "Apply log" }))).slice(0, 5).map((r) => r.action);
    expect(actions).toEqual([`edit backend ${B1.ip}:${B1.port}: weight 2 → 1`, `back in service: backend ${who0}`, `cut backend ${who0}`, `back in service: backend ${who0}`, `drain backend ${who0}`]);
    // One time format on the page: UTC, as History writes it.
    await page.goto(url("/tables"));
    await expectText(page.getByText(/^Read /), /^Read \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  });

  it("13. Remove backend says what happens and toasts; removing the only backend leaves a critical farm, never running", async () => {
    await gotoFarm();
    const add = page.getByRole("form", { name: "Add backend" });
    await add.getByLabel("IP address").fill("203.0.113.12");
    await add.getByLabel("Port").fill("80");
    await add.getByRole("button", { name: "Add backend" }).click();
    await expectCount(backendsTable().getByRole("button", { name: "Remove backend 203.0.113.12:80" }), 1, { timeout: 60_000 });
    await backendsTable().getByRole("button", { name: "Remove backend 203.0.113.12:80" }).click();
    const dialog = page.getByRole("dialog", { name: "Remove backend 203.0.113.12:80?" });
    await expectText(dialog, /The other 2 backends that are up share its 20\.0 % of new connections\./);
    await clearToasts();
    await dialog.getByRole("button", { name: "Remove backend" }).click();
    await expectText(toasts(page, "success"), `Backend 203.0.113.12:80 removed from farm ${FARM}.`, { timeout: 60_000 });
    await expectCount(backendsTable().getByRole("button", { name: "Remove backend 203.0.113.12:80" }), 0);

    // A farm of one backend: its removal is said for what it is.
    await page.goto(url("/"));
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill("solo");
    await form.getByLabel("Virtual IP").fill("198.51.100.249");
    await form.getByLabel("Ports", { exact: true }).fill("80");
    await form.getByLabel("IP address of backend 1").fill(B0.ip);
    await form.getByLabel("Port of backend 1").fill("80");
    await form.getByRole("button", { name: "Create farm" }).click();
    await expectCount(toasts(page, "success").filter({ hasText: "Farm solo created" }), 1, { timeout: 60_000 });
    await gotoFarm("solo");
    await page.getByRole("table", { name: "Backends of solo" }).getByRole("button", { name: `Remove backend ${B0.ip}:80` }).click();
    const only = page.getByRole("dialog", { name: `Remove backend ${B0.ip}:80?` });
    await expectText(only, "This is the farm's only backend");
    await expectNoText(only, "share its");
    await clearToasts();
    await only.getByRole("button", { name: "Remove backend" }).click();
    await expectText(toasts(page, "success"), "The farm has no backend left", { timeout: 60_000 });
    await expectText(page.getByRole("heading", { level: 1 }), "critical");
    await expectNoText(page.getByRole("heading", { level: 1 }), "running");
    await expectText(page.getByTestId("farm-critical"), "The farm has no backend.");
    await page.goto(url("/"));
    const soloRow = page.getByRole("table", { name: "Farms" }).getByRole("row").filter({ has: page.getByRole("link", { name: "solo", exact: true }) });
    await expectText(soloRow, "critical");
    await gotoFarm("solo");
    await page.getByRole("button", { name: "Delete farm" }).click();
    await page.getByRole("dialog", { name: "Delete farm solo?" }).getByRole("button", { name: "Delete farm" }).click();
    await expectUrl(page, url("/?deleted=solo"), { timeout: 60_000 });
  });

  it("14. search and filters survive Back; the lab example can be tried on the lab; the count field's error clears; a favicon", async () => {
    const notFound: string[] = [];
    const onResponse = (r: { status(): number; url(): string }) => void (r.status() === 404 && notFound.push(r.url()));
    page.on("response", onResponse);
    try {
      await page.goto(url("/"));
      await page.getByLabel("Search").fill(FARM);
      await page.getByLabel("NAT type", { exact: true }).selectOption("nat");
      await page.getByRole("table", { name: "Farms" }).getByRole("link", { name: FARM, exact: true }).click();
      await expectUrl(page, url(`/farms/${FARM}`));
      await page.goBack();
      await expectValue(page.getByLabel("Search"), FARM);
      await expectValue(page.getByLabel("NAT type", { exact: true }), "nat");

      // Beside the guide's example (192.168.x: for reading rules), a farm the lab can carry.
      await clearToasts();
      await page.getByRole("button", { name: "Lab example" }).click();
      await expectText(toasts(page, "success"), "Farm lab-example created", { timeout: 60_000 });
      await page.goto(url("/lab"));
      const form = page.getByRole("main");
      const option = form.getByLabel("Farm", { exact: true }).locator("option", { hasText: "lab-example" });
      expect(await option.isDisabled()).toBe(false);
      await form.getByLabel("Farm", { exact: true }).selectOption("lab-example");
      const count = form.getByLabel("Connections", { exact: true });
      await count.fill("0");
      await form.getByRole("button", { name: "Send connections" }).click();
      await expectAttribute(count, "aria-invalid", "true");
      await expectValue(count, "0");
      await count.fill("20");
      await expectAttribute(count, "aria-invalid", null);
      await expectDescription(count, /^$/);
      await form.getByRole("button", { name: "Send connections" }).click();
      await page.getByRole("table", { name: "Lab results for lab-example" }).waitFor({ timeout: 60_000 });
      await expectText(form.getByText(/connections to/), /^20 of 20 tcp connections/);

      // The page names its icon, and the server answers for it (no 404 in the browser's console).
      expect(await page.locator('link[rel~="icon"]').first().getAttribute("href")).toMatch(/^\/favicon\.ico/);
      const icon = await c.context.request.get(url("/favicon.ico"));
      expect(icon.status()).toBe(200);
      expect(icon.headers()["content-type"]).toMatch(/icon/);
    } finally {
      page.off("response", onResponse);
    }
    expect(notFound).toEqual([]);
  });

  it("15. a backend edit shows its new value and an announced 'saving' toast at once, replaced by the result; a refusal rolls the row back with the error", async () => {
    await gotoFarm();
    const table = backendsTable();
    const who0 = `${B0.ip}:${B0.port}`;
    const weightOf = (b: { ip: string; port: number }) =>
      c.query<{ weight: number }>("SELECT b.weight FROM Backend b JOIN Farm f ON f.id = b.farmId WHERE f.name = ? AND b.ip = ? AND b.port = ?", FARM, b.ip, b.port)[0]!.weight;
    const w0 = weightOf(B0);
    // The action's POST is held until released: what the page shows before the server answers is the
    // optimistic acknowledgement, whatever the machine's speed.
    let release: () => void = () => {};
    const hold = async (route: Route) => {
      if (route.request().method() !== "POST") return route.fallback();
      await new Promise<void>((r) => (release = r));
      await route.fallback();
    };
    await page.route(`**/farms/${FARM}`, hold);
    const announced = page.getByRole("region", { name: /^Notifications/ });
    try {
      // Applied: the row shows the new weight at once, the toast says it is being saved, then what was done.
      await clearToasts();
      const next = (w0 % 100) + 1;
      await editWeight(B0, String(next));
      const row = table.getByRole("row").filter({ hasText: B0.ip });
      await expectAttribute(row, "aria-busy", "true");
      await expectText(row, String(next));
      await expectText(row, "saving…");
      await expectText(toastsOf(page, "loading"), `Saving backend ${who0}: weight ${w0} → ${next}…`);
      await expectAttribute(announced, "aria-live", "polite");
      expect(weightOf(B0)).toBe(w0);
      release();
      await expectText(toasts(page, "success"), `Backend ${who0} of farm ${FARM}: weight ${w0} → ${next}.`, { timeout: 60_000 });
      await expectCount(toasts(page), 1);
      await expectCount(table.getByRole("button", { name: `Edit backend ${who0}` }), 1);
      expect(weightOf(B0)).toBe(next);

      // Refused by the server's checks across the farm (the address of the other backend): nothing saved,
      // the row goes back to the editor with what was typed and why, and the "saving" toast goes.
      await clearToasts();
      await table.getByRole("button", { name: `Edit backend ${who0}` }).click();
      await table.getByLabel(`IP address of backend ${who0}`, { exact: true }).fill(B1.ip);
      await table.getByRole("button", { name: `Save backend ${who0}` }).click();
      await expectText(table.getByRole("row").filter({ hasText: "saving…" }), B1.ip);
      await expectCount(toastsOf(page, "loading"), 1);
      release();
      const ip = table.getByLabel(`IP address of backend ${who0}`, { exact: true });
      await expectValue(ip, B1.ip, { timeout: 60_000 });
      await expectText(table, /duplicate|already/i);
      await expectCount(toastsOf(page, "loading"), 0);
      await expectCount(toasts(page, "success"), 0);
      await table.getByRole("button", { name: `Cancel editing backend ${who0}` }).click();
      expect((await readTable(table)).map((r) => r["ip address"])).toEqual([B0.ip, B1.ip]);
      expect(c.query("SELECT b.ip FROM Backend b JOIN Farm f ON f.id = b.farmId WHERE f.name = ? ORDER BY b.position", FARM)).toEqual([{ ip: B0.ip }, { ip: B1.ip }]);

      // Refused by the kernel: the "saving" toast becomes the error with iptables' words, never a success.
      fs.writeFileSync(c.faultFile, "nat");
      await clearToasts();
      await editWeight(B0, String(w0));
      await expectCount(toastsOf(page, "loading"), 1);
      release();
      await expectText(toasts(page, "error"), /iptables-restore|NATFARM-INJECTED-FAULT|Couldn't load target/, { timeout: 60_000 });
      await expectCount(toasts(page), 1);
      await expectCount(toasts(page, "success"), 0);
    } finally {
      release();
      await page.unroute(`**/farms/${FARM}`, hold);
      fs.rmSync(c.faultFile, { force: true });
    }
    // What the kernel refused is applied again, for the scenarios after this one.
    await gotoFarm();
    await clearToasts();
    await page.getByRole("alert").filter({ hasText: "Apply failed" }).getByRole("button", { name: "Re-apply" }).click();
    await expectCount(page.getByRole("alert").filter({ hasText: "Apply failed" }), 0, { timeout: 60_000 });
    expect(c.query("SELECT applyState FROM Farm WHERE name = ?", FARM)).toEqual([{ applyState: "applied" }]);
  });

  it("16. placeholders say they are examples or what a blank field means, drawn unlike a value; every page writes times one way", async () => {
    /** Every visible input's placeholder, and how it is drawn next to a typed value. */
    const placeholders = () =>
      page.evaluate(() =>
        [...document.querySelectorAll<HTMLInputElement>("input[placeholder]")]
          .filter((el) => el.offsetParent !== null)
          .map((el) => {
            const ph = getComputedStyle(el, "::placeholder");
            return { label: el.labels?.[0]?.textContent?.trim() ?? el.getAttribute("aria-label") ?? el.name, placeholder: el.placeholder, italic: ph.fontStyle, colour: ph.color, valueColour: getComputedStyle(el).color };
          }),
      );
    /** Every moment the page writes: <time> elements, and any clock time in the visible text. */
    const times = () =>
      page.evaluate(() => ({
        elements: [...document.querySelectorAll("time")].map((t) => t.textContent?.trim() ?? ""),
        clocks: [...document.body.innerText.matchAll(/(?:\d{4}-\d\d-\d\d[ T])?\d{1,2}:\d\d:\d\d(?:\.\d+)?(?: ?(?:UTC|Z|[AP]M))?/g)].map((m) => m[0]),
      }));
    const ONE_FORMAT = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;
    const seen: { page: string; label: string; placeholder: string }[] = [];
    const check = async (where: string) => {
      for (const f of await placeholders()) {
        seen.push({ page: where, label: f.label, placeholder: f.placeholder });
        // A placeholder that reads like a value ("/", "200", "1..100") is taken for one: it gives an example or says what blank means.
        expect(f.placeholder, `${where}: placeholder of ${f.label}`).toMatch(/^(e\.g\. |blank\b|all )/);
        expect(f.italic, `${where}: placeholder of ${f.label} drawn like a value`).toBe("italic");
        expect(f.colour, `${where}: placeholder of ${f.label} in the value's colour`).not.toBe(f.valueColour);
      }
      const t = await times();
      for (const e of t.elements) expect(e, `${where}: a <time>`).toMatch(ONE_FORMAT);
      for (const clock of t.clocks) expect(clock, `${where}: a time in the text`).toMatch(ONE_FORMAT);
    };

    await page.goto(url("/"));
    await page.getByRole("button", { name: "New farm" }).click();
    await expectVisible(page.getByRole("region", { name: "New farm" }));
    await check("farms");

    await gotoFarm();
    const settings = page.getByRole("form", { name: `Settings of ${FARM}` });
    await settings.getByLabel("Enable health check").check();
    await settings.getByLabel("Check type").selectOption("http");
    await expectVisible(settings.getByLabel("HTTP path"));
    await check("farm");
    // The two placeholders that read like values before: blank means the default, and says so.
    await expectAttribute(settings.getByLabel("HTTP path"), "placeholder", "blank: /");
    await expectAttribute(settings.getByLabel("Expected status"), "placeholder", "blank: 200");
    await settings.getByRole("button", { name: "Reset" }).click();
    expect(c.query("SELECT healthcheck FROM Farm WHERE name = ?", FARM)).toEqual([{ healthcheck: null }]);

    for (const p of ["/lab", "/tables", "/history", "/account"]) {
      await page.goto(url(p));
      await expectVisible(page.getByRole("heading", { level: 1 }));
      if (p === "/tables") await expectText(page.getByText(/^Read /), /^Read /);
      if (p === "/history") await page.getByRole("table", { name: "Apply log" }).getByRole("row").nth(1).waitFor();
      await check(p);
    }
    // The check looked at the forms that have placeholders, not at none.
    expect(seen.map((s) => s.label)).toEqual(expect.arrayContaining(["Name", "Virtual IP", "Ports", "HTTP path", "Expected status", "Check port"]));
  });
});
