import path from "node:path";
import { execa, type ResultPromise } from "execa";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { directKernel } from "../../lib/kernel/index.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { iptables, mangleNatRules } from "../helpers/netns.ts";
import { namespacesOf, ROOT, startConsole, type Console } from "./harness.ts";
import { axeViolationsOf, expectAttribute, expectCount, expectText, expectVisible, mainAxeViolations, toastsOf } from "./ui-expect.ts";

/**
 * Staged changes end to end (issue 11, item 1): the built console, its lab,
 * Chromium, and the health checker (whose loop watches savepoints), one of
 * each for the file. With staging on, three weight edits leave the lab's
 * kernel as it was while the banner counts them and shows the rules they
 * change; Apply changes writes them in one apply; Discard leaves the kernel
 * untouched; an apply with rollback that nobody confirms goes back by
 * itself after its (shortened) timeout, read with iptables-save. The
 * banner's rule diff is against the kernel as it is (a DNAT rule deleted by
 * hand shows as drift and as a line Apply puts back); axe-core finds no
 * serious or critical violation in the staged and the savepoint banners,
 * light and dark, desktop and 390 px. With the installation setting off, one
 * login stages its own edits (History's toggle) while an edit applied at
 * once to its farm is refused naming it.
 */
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const FARM = "stg";
const VIP = "198.51.100.42";
const SAVEPOINT_SECONDS = 4;
let c: Console;
let page: Page;
let checker: ResultPromise | undefined;
const pageErrors: string[] = [];

beforeAll(async () => {
  c = await startConsole({ backends: 2, env: { NATFARM_SAVEPOINT_SECONDS: String(SAVEPOINT_SECONDS) }, log: (m) => console.log(`[e2e staged] ${m}`) });
  page = c.page;
  page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  const port = c.lab.ports[0]!;
  const db = await openDatabase(c.dbUrl);
  try {
    const r = await createFarmService({ db, target: c.target, kernel: directKernel }).createFarm({ name: FARM, vip: VIP, ports: String(port), protocol: "tcp", mode: "dnat", backends: c.lab.backends.map((b) => ({ ip: b.ip, port, weight: 1 })) });
    expect(r).toMatchObject({ ok: true });
  } finally {
    await disconnectPrisma(c.dbUrl);
  }
  // The checker as npm start runs it, against the console's database and target: its loop rolls savepoints back.
  // It enters the balancer's namespace, where PostgreSQL is reached through its socket.
  checker = execa(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "health-checker.ts")], {
    cwd: ROOT,
    env: { NATFARM_TARGET: `netns:${c.lab.lbNs}`, NATFARM_DATABASE_URL: c.dbNetnsUrl, NATFARM_AGENT_SOCKET: path.join(c.dir, "agent", "agent.sock") },
    reject: false,
    all: true,
  });
}, 600_000);

afterAll(async () => {
  checker?.kill("SIGTERM");
  await checker;
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab), "namespaces left behind").toEqual([]);
  expect(pageErrors, "uncaught errors in the page").toEqual([]);
}, 120_000);

const url = (p: string) => `${c.baseUrl}${p}`;

const kernelRules = () => mangleNatRules(c.target);

const toasts = (type?: "success" | "error") => toastsOf(page, type);

async function clearToasts(): Promise<void> {
  for (const close of await page.getByRole("button", { name: /close toast/i }).all()) await close.click({ timeout: 2000 }).catch(() => {});
  // A closed toast stays in the page through its exit animation: the next edit's wait for its own
  // toast would otherwise be met by the last one's, before its save is done.
  await expectCount(toasts(), 0);
}

/** axe-core on one banner, light and dark, desktop and phone; back to desktop and light after. */
async function bannerAxe(testId: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for (const viewport of [DESKTOP, PHONE]) {
    for (const scheme of ["light", "dark"] as const) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await expect.poll(() => page.locator("html").getAttribute("data-theme")).toBe(scheme);
      // The colours move to the new scheme through CSS transitions: measured halfway, contrast is neither scheme's.
      await page.evaluate(() => Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished.catch(() => {}))));
      await expectVisible(page.getByTestId(testId));
      const v = await axeViolationsOf(page, `[data-testid="${testId}"]`);
      if (v.length) found[`${viewport.width} px ${scheme}`] = v;
    }
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: "light" });
  return found;
}

const backend = (i: number) => `${c.lab.backends[i]!.ip}:${c.lab.ports[0]!}`;

async function editWeight(i: number, weight: string): Promise<void> {
  const table = page.getByRole("table", { name: `Backends of ${FARM}` });
  await table.getByRole("button", { name: `Edit backend ${backend(i)}` }).click();
  await table.getByLabel(`Weight of backend ${backend(i)}`, { exact: true }).fill(weight);
  await table.getByRole("button", { name: `Save backend ${backend(i)}` }).click();
  await expectText(toasts("success").first(), /Staged: pending until Apply changes/);
  await clearToasts();
}

const weights = () => c.query<{ weight: number }>('SELECT b.weight AS weight FROM "Backend" b ORDER BY b.position').map((r) => Number(r.weight));
const appliesOf = (action: string) => Number(c.query<{ n: number }>('SELECT COUNT(*) AS n FROM "ApplyLog" WHERE action = ?', action)[0]!.n);

describe.sequential("staged changes", () => {
  let before = "";
  let afterApply = "";

  it("with staging on, three edits leave the kernel alone; the banner counts them and shows the rule diff", async () => {
    await page.goto(url("/history"));
    await page.getByTestId("staging-setting").getByRole("button", { name: "Stage changes" }).click();
    await expectText(page.getByTestId("staging-setting"), "Stage changes: on.");
    before = await kernelRules();
    const logged = Number(c.query<{ n: number }>('SELECT COUNT(*) AS n FROM "ApplyLog"')[0]!.n);

    await page.goto(url(`/farms/${FARM}`));
    await editWeight(0, "3");
    await editWeight(1, "2");
    await editWeight(0, "4");
    expect(weights()).toEqual([4, 2]);
    expect(await kernelRules()).toBe(before);
    expect(Number(c.query<{ n: number }>('SELECT COUNT(*) AS n FROM "ApplyLog"')[0]!.n)).toBe(logged);

    await page.reload();
    const banner = page.getByRole("region", { name: "Staged changes" });
    await expectText(banner.getByTestId("staged-count"), "3 pending changes");
    await banner.getByText("What Apply changes does").click();
    // Against the kernel now (the agent's scoped read of the farm's chains), in the farm page's drift lines.
    await expectAttribute(banner.getByTestId(`staged-rules-${FARM}`), "data-basis", "kernel");
    await expectText(banner.getByTestId(`staged-rules-${FARM}`), /\+ mangle NATFARM-F-stg .*--probability 0\.66666666/);
    await expectText(banner.getByTestId(`staged-rules-${FARM}`), /− mangle NATFARM-F-stg .*--probability 0\.50000000000/);
    expect(await banner.getByTestId("staged-drift").count()).toBe(0);
    expect(await mainAxeViolations(page)).toEqual([]);
  });

  it("the diff is against the live kernel: a rule deleted by hand is drift, and a line Apply changes puts back", async () => {
    const dnat = (await iptables(c.target, ["-t", "nat", "-S"])).split("\n").find((l) => l.includes(`FARM_${FARM}_`) && l.includes(`--to-destination ${backend(1)}`))!;
    expect(dnat).toBeTruthy();
    await iptables(c.target, ["-t", "nat", "-D", ...dnat.replace(/^-A /, "").split(" ")]);
    // The banner reads the kernel at most every 2 s.
    await expect.poll(async () => (await page.reload(), page.getByTestId("staged-drift").count()), { timeout: 20_000, interval: 500 }).toBe(1);
    const banner = page.getByRole("region", { name: "Staged changes" });
    await expectText(banner.getByTestId("staged-drift"), new RegExp(`The kernel no longer holds what was last applied for farm ${FARM}`));
    await banner.getByText("What Apply changes does").click();
    await expectText(banner.getByTestId(`staged-rules-${FARM}`), `+ nat ${dnat.replace(/^-A /, "")}`);
    expect(await bannerAxe("staged-banner")).toEqual({});
  });

  it("Apply changes writes them all in one apply", async () => {
    const banner = page.getByRole("region", { name: "Staged changes" });
    await banner.getByRole("button", { name: "Apply changes", exact: true }).click();
    await expectText(toasts("success").first(), `Applied 3 pending changes (farm ${FARM}) in one transaction.`);
    await clearToasts();
    expect(appliesOf("apply changes")).toBe(1);
    afterApply = await kernelRules();
    expect(afterApply).not.toBe(before);
    expect(afterApply).toMatch(/--probability 0\.66666666/);
    expect(afterApply).toContain(`--to-destination ${backend(1)}`);
    await page.reload();
    expect(await page.getByRole("region", { name: "Staged changes" }).count()).toBe(0);
  });

  it("Discard (asked first, on Cancel) brings the configuration back and leaves the kernel untouched", async () => {
    await editWeight(1, "9");
    await page.reload();
    const banner = page.getByRole("region", { name: "Staged changes" });
    await expectText(banner.getByTestId("staged-count"), "1 pending change");
    await banner.getByRole("button", { name: "Discard…" }).click();
    const dialog = page.getByRole("dialog", { name: "Discard 1 pending change?" });
    await expectVisible(dialog);
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Cancel");
    await expectText(dialog, `farm ${FARM}: backend ${backend(1)} weight 2 → 9`);
    await dialog.getByRole("button", { name: "Discard", exact: true }).click();
    await expectText(toasts("success").first(), /Staged changes discarded: .*the kernel was not touched/);
    await clearToasts();
    expect(weights()).toEqual([4, 2]);
    expect(await kernelRules()).toBe(afterApply);
    expect(appliesOf("apply changes")).toBe(1);
  });

  it("an apply with rollback that nobody confirms goes back by itself after its timeout", async () => {
    await editWeight(1, "5");
    await page.reload();
    const banner = page.getByRole("region", { name: "Staged changes" });
    await banner.getByRole("button", { name: `Apply with rollback (${SAVEPOINT_SECONDS} s): back to the previous configuration unless kept` }).click();
    await expectText(toasts("success").first(), new RegExp(`Confirm within ${SAVEPOINT_SECONDS} s`));
    const applied = await kernelRules();
    expect(applied).not.toBe(afterApply);
    await expectVisible(page.getByTestId("savepoint-banner"));
    await expectText(page.getByTestId("savepoint-seconds"), /^\d+ s$/);
    // Within its few seconds: the banner stays until the page refreshes after the deadline.
    expect(await bannerAxe("savepoint-banner")).toEqual({});
    // Nobody confirms, and the browser leaves: the server side (the checker's loop) rolls back.
    await page.goto("about:blank");
    await expect.poll(kernelRules, { timeout: 30_000, interval: 250 }).toBe(afterApply);
    expect(weights()).toEqual([4, 2]);
    const [last] = c.query<{ author: string; summary: string }>('SELECT author, summary FROM "ConfigRevision" ORDER BY id DESC LIMIT 1');
    expect(last).toMatchObject({ author: "system (savepoint)", summary: expect.stringMatching(/^savepoint: not confirmed in time/) });
    await page.goto(url("/"));
    expect(await page.getByTestId("savepoint-banner").count()).toBe(0);
  });

  it("per login: with the installation setting off, this login stages its own edits; an edit at once elsewhere is refused naming it", async () => {
    await page.goto(url("/history"));
    await page.getByTestId("staging-setting").getByRole("button", { name: "Apply edits at once" }).click();
    await expectText(page.getByTestId("staging-setting"), "Stage changes: off.");
    await clearToasts();
    await page.getByTestId("session-staging-setting").getByRole("button", { name: "Stage my changes (this login only)" }).click();
    await expectText(toasts("success").first(), /Your edits are staged from now on \(this login only\)/);
    await clearToasts();
    await expectVisible(page.getByTestId("session-staging-banner"));
    expect(await bannerAxe("session-staging-banner")).toEqual({});
    const rules = await kernelRules();
    await page.goto(url(`/farms/${FARM}`));
    await editWeight(1, "6");
    expect(await kernelRules()).toBe(rules);
    await page.reload();
    const banner = page.getByRole("region", { name: "Staged changes" });
    await expectText(banner, /1 pending change in farm stg by admin, not applied yet: .* Your edits are staged \(this login only\)\./);
    // Another client without this session (the API, the CLI, another login): the installation setting, off, applies at once, which would apply admin's staged change too.
    const db = await openDatabase(c.dbUrl);
    try {
      const other = createFarmService({ db, target: c.target, kernel: directKernel });
      const mark = (await other.getFarm(FARM))!.backends[0]!.mark;
      expect(await other.updateBackend(FARM, mark, { weight: 8 })).toMatchObject({ ok: false, message: expect.stringMatching(/^Farm stg has staged changes not applied yet \(#\d+ farm stg: edit backend .* by admin\)/) });
    } finally {
      await disconnectPrisma(c.dbUrl);
    }
    expect(weights()).toEqual([4, 6]);
    await banner.getByRole("button", { name: "Apply changes", exact: true }).click();
    await expectText(toasts("success").first(), `Applied 1 pending change (farm ${FARM}) in one transaction.`);
    await clearToasts();
    expect(await kernelRules()).not.toBe(rules);
    await page.reload();
    await page.getByTestId("session-staging-banner").getByRole("button", { name: "Apply my edits at once again (this login)" }).click();
    await expectText(toasts("success").first(), /Your edits are applied at once again/);
    await clearToasts();
    await page.reload();
    expect(await page.getByRole("region", { name: "Staged changes" }).count()).toBe(0);
    expect(c.query<{ applied: string | null }>('SELECT applied FROM "StagedState"')[0]!.applied).toBeNull();
  });
});
