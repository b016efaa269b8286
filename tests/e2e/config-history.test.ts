import fs from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { directKernel } from "../../lib/kernel/index.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { createTestDatabase } from "../helpers/db.ts";
import { mangleNatRules } from "../helpers/netns.ts";
import { namespacesOf, startConsole, type Console } from "./harness.ts";
import { expectText, expectVisible, mainAxeViolations, toastsOf } from "./ui-expect.ts";

/**
 * The configuration history end to end (issue 11, item 2): the built
 * console, its lab and Chromium, one console for the file. A weight edit in
 * the farm page is a revision by the signed-in user with its diff (farm and
 * rules); reverting to the first revision from its page (a confirmation
 * listing what changes, opening on Cancel) brings the lab's kernel back to
 * the earlier rules, read with iptables-save; the backup downloaded from
 * History, restored into a fresh database, gives the same farms; a bad
 * backup uploaded to History changes nothing and says why.
 */
const FARM = "hist";
const VIP = "198.51.100.41";
let c: Console;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  c = await startConsole({ backends: 2, log: (m) => console.log(`[e2e config-history] ${m}`) });
  page = c.page;
  page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab), "namespaces left behind").toEqual([]);
  expect(pageErrors, "uncaught errors in the page").toEqual([]);
}, 120_000);

const url = (p: string) => `${c.baseUrl}${p}`;

const kernelRules = () => mangleNatRules(c.target);

const toasts = (type?: "success" | "error") => toastsOf(page, type);

const revisionRows = () => page.getByRole("table", { name: "Configuration revisions" }).getByTestId("revision-row");

describe.sequential("configuration history", () => {
  let first = 0;
  let rulesAtFirst = "";
  const b0 = () => `${c.lab.backends[0]!.ip}:${c.lab.ports[0]!}`;

  it("a farm created and a weight edited in the console are two revisions by the signed-in user, each with its diff", async () => {
    const port = c.lab.ports[0]!;
    const db = await openDatabase(c.dbUrl);
    try {
      // Created through the service as `natfarm import --apply` would: this file tests the history, not the form.
      const r = await createFarmService({ db, target: c.target, kernel: directKernel }).createFarm({ name: FARM, vip: VIP, ports: String(port), protocol: "tcp", mode: "dnat", backends: c.lab.backends.map((b) => ({ ip: b.ip, port, weight: 1 })) });
      expect(r).toMatchObject({ ok: true });
    } finally {
      await disconnectPrisma(c.dbUrl);
    }
    rulesAtFirst = await kernelRules();
    expect(rulesAtFirst).toContain("--probability 0.50000000000");

    await page.goto(url(`/farms/${FARM}`));
    const table = page.getByRole("table", { name: `Backends of ${FARM}` });
    await table.getByRole("button", { name: `Edit backend ${b0()}` }).click();
    await table.getByLabel(`Weight of backend ${b0()}`, { exact: true }).fill("3");
    await table.getByRole("button", { name: `Save backend ${b0()}` }).click();
    await expectVisible(toasts("success").first());
    await expect.poll(kernelRules, { timeout: 20_000 }).toContain("--probability 0.75000000000");

    await page.goto(url("/history"));
    await expectText(revisionRows().first(), new RegExp(`admin.*console.*farm ${FARM}: edit backend ${b0().replaceAll(".", "\\.")}: weight 1 → 3`));
    await expectText(revisionRows().nth(1), new RegExp(`system.*farm ${FARM}: create`));
    first = Number((await revisionRows().nth(1).getByRole("link").first().innerText()).replace("#", ""));
    expect(first).toBeGreaterThan(0);

    await revisionRows().first().getByRole("link").first().click();
    const diff = page.getByTestId(`diff-${FARM}`);
    await expectText(diff, `farm ${FARM}: backend ${b0()} weight 1 → 3`);
    await expectText(diff.getByRole("region", { name: `Farm ${FARM}: its settings, before and after` }).locator('[data-op="added"]'), '"weight": 3');
    await expectText(diff.getByRole("region", { name: `Farm ${FARM}: its rules, lines added and removed` }).locator('[data-op="added"]').first(), "--probability 0.75000000000");
    expect(await mainAxeViolations(page)).toEqual([]);
  });

  it("revert to the first revision asks first (on Cancel), is a new revision, and the kernel holds the earlier rules again", async () => {
    await page.goto(url(`/history/revisions/${first}`));
    await page.getByRole("button", { name: "Revert to this revision…" }).click();
    const dialog = page.getByRole("dialog", { name: `Revert to revision #${first}?` });
    await expectVisible(dialog);
    await expectText(dialog.getByTestId("revert-changes"), `farm ${FARM}: backend ${b0()} weight 3 → 1`);
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
    expect(await mainAxeViolations(page)).toEqual([]);
    // Cancel changes nothing.
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await kernelRules()).toContain("--probability 0.75000000000");

    await page.getByRole("button", { name: "Revert to this revision…" }).click();
    await dialog.getByRole("button", { name: "Revert" }).click();
    await expectText(toasts("success").first(), new RegExp(`Reverted to revision ${first}: 1 farm changed`));
    await expect.poll(kernelRules, { timeout: 20_000 }).toBe(rulesAtFirst);

    await page.goto(url("/history"));
    await expectText(revisionRows().first(), new RegExp(`admin.*revert to revision ${first}`));
  });

  it("the backup downloaded from History, restored on a fresh database, gives the same farms", async () => {
    await page.goto(url("/history"));
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download backup" }).click()]);
    expect(download.suggestedFilename()).toMatch(/^natfarm-backup-\d{8}-\d{6}\.json$/);
    const file = path.join(c.dir, "backup.json");
    await download.saveAs(file);
    const text = fs.readFileSync(file, "utf8");
    expect(JSON.parse(text).farms.map((f: { name: string }) => f.name)).toEqual([FARM]);

    const fresh = await createTestDatabase("e2e-restore");
    try {
      await migrate(fresh.url);
      const db = await openDatabase(fresh.url);
      const other = createFarmService({ db, target: null });
      expect(await other.restore(text, "backup.json")).toMatchObject({ ok: true });
      const original = await openDatabase(c.dbUrl);
      const want = await createFarmService({ db: original, target: null }).backup();
      expect(await other.backup()).toEqual(want);
      await disconnectPrisma(fresh.url);
      await disconnectPrisma(c.dbUrl);
    } finally {
      await fresh.drop();
    }
  });

  it("a bad backup uploaded to History changes nothing and says why; the good one restores (nothing to change)", async () => {
    const before = await kernelRules();
    const head = await revisionRows().first().innerText();
    const bad = path.join(c.dir, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ farms: [{ name: FARM, vip: VIP, ports: "0", protocol: "tcp", mode: "dnat", backends: [] }] }));
    await page.getByLabel("Restore from a backup file").setInputFiles(bad);
    await page.getByRole("button", { name: "Restore…" }).click();
    const dialog = page.getByRole("dialog", { name: "Restore the whole configuration?" });
    await expectVisible(dialog);
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
    await dialog.getByRole("button", { name: "Restore", exact: true }).click();
    await expectText(page.getByTestId("restore-error"), /Nothing changed: .*port/);
    expect(await kernelRules()).toBe(before);
    await page.reload();
    expect(await revisionRows().first().innerText()).toBe(head);

    await page.getByLabel("Restore from a backup file").setInputFiles(path.join(c.dir, "backup.json"));
    await page.getByRole("button", { name: "Restore…" }).click();
    await dialog.getByRole("button", { name: "Restore", exact: true }).click();
    await expectText(toasts("success").first(), /nothing changed/);
    expect(await kernelRules()).toBe(before);
  });
});
