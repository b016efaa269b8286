import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { directKernel } from "../../lib/kernel/index.ts";
import { createFarmService } from "../../lib/service/farm-service.ts";
import { iptablesSave } from "../helpers/netns.ts";
import { namespacesOf, startConsole, type Console } from "./harness.ts";
import { expectCount, expectHidden, expectText, expectUrl, expectValue, expectVisible, toastsOf } from "./ui-expect.ts";

/**
 * The farms list's own controls, end to end (issue 11, item 4): the built
 * console and its lab, Chromium, one console for the whole file. Sorting,
 * search by backend address and the URL that keeps them across Back; Stop
 * from the list with its confirmation; bulk drain of an address across
 * exactly the farms that have it (read back with iptables-save on the
 * lab's load balancer); bulk delete refused for an operator (no control,
 * and a replayed request refused by the server, audited, nothing changed)
 * and done by an admin; axe on the list with its selection toolbar.
 */
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const B10 = "203.0.113.10";
const B11 = "203.0.113.11";
// VIPs in the reverse order of the names: sorting by VIP visibly changes the order.
const FARMS = [
  { name: "alpha", vip: "198.51.100.25", port: 8001, backends: [B10, B11] },
  { name: "bravo", vip: "198.51.100.24", port: 8002, backends: [B10, B11] },
  { name: "charlie", vip: "198.51.100.23", port: 8003, backends: [B11, B10] },
  { name: "delta", vip: "198.51.100.22", port: 8004, backends: [B11] },
  { name: "echo", vip: "198.51.100.21", port: 8005, backends: [B11] },
];

let c: Console;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  c = await startConsole({ backends: 2, log: (m) => console.log(`[e2e farm-list] ${m}`) });
  page = c.page;
  page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  // The farms come in through the service, as `natfarm import --apply` would bring them: this file tests the list, not the form.
  const db = await openDatabase(c.dbUrl);
  try {
    const service = createFarmService({ db, target: c.target, kernel: directKernel });
    for (const f of FARMS) {
      const r = await service.createFarm({ name: f.name, vip: f.vip, ports: String(f.port), protocol: "tcp", mode: "dnat", backends: f.backends.map((ip) => ({ ip, port: 80, weight: 1 })) });
      expect(r, f.name).toMatchObject({ ok: true });
    }
  } finally {
    await disconnectPrisma(c.dbUrl);
  }
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab), "namespaces left behind").toEqual([]);
  expect(pageErrors, "uncaught errors in the page").toEqual([]);
}, 120_000);

const url = (p: string) => `${c.baseUrl}${p}`;
const list = (p: Page = page) => p.getByRole("table", { name: "Farms" });

const toasts = (p: Page = page, type?: "success" | "error") => toastsOf(p, type);

async function clearToasts(p: Page = page): Promise<void> {
  for (const close of await p.getByRole("button", { name: /close toast/i }).all()) await close.click({ timeout: 2000 }).catch(() => {});
  await expectCount(toasts(p), 0, { timeout: 10_000 });
}

/** The farm names in the list's order, as shown. */
async function shownNames(p: Page = page): Promise<string[]> {
  await list(p).getByRole("row").nth(1).waitFor();
  return (await list(p).getByRole("row").getByRole("link").allInnerTexts()).map((s) => s.trim());
}

async function expectNames(want: string[], p: Page = page): Promise<void> {
  await expect.poll(() => shownNames(p), { timeout: 20_000 }).toEqual(want);
}

/** Marks of the lab's backends by farm, from the console's database. */
function marks(): { farm: string; ip: string; mark: number; state: string }[] {
  return c.query<{ farm: string; ip: string; mark: number; state: string }>(
    'SELECT f.name AS farm, b.ip AS ip, b.mark AS mark, b.state AS state FROM "Backend" b JOIN "Farm" f ON f.id = b."farmId" ORDER BY f.name, b.ip',
  ).map((r) => ({ ...r, mark: Number(r.mark) }));
}

/** nat as iptables-save prints it, without its timestamped comments and chain counters: what must not change. */
async function natRules(): Promise<string> {
  return (await iptablesSave(c.target, "nat"))
    .split("\n")
    .filter((l) => !l.startsWith("#") && !l.startsWith(":"))
    .join("\n");
}

async function mangle(): Promise<string> {
  return iptablesSave(c.target, "mangle");
}
const marksNew = (text: string, mark: number) => new RegExp(`MARK --set-x?mark 0x${mark.toString(16)}\\b`).test(text);

async function seriousViolations(p: Page): Promise<string[]> {
  if (!(await p.evaluate(() => "axe" in window))) await p.addScriptTag({ path: AXE });
  const violations = (await p.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ["violations"] })).violations;
  })) as { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
}

describe.sequential("farms list", () => {
  it("sorts by a column, searches by a backend address, and the URL keeps both across Back", async () => {
    await page.goto(url("/"));
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    await list().getByRole("button", { name: "Sort by VIP" }).click();
    await expectNames(["echo", "delta", "charlie", "bravo", "alpha"]);
    await expect.poll(() => new URL(page.url()).searchParams.get("sort")).toBe("vip");
    // Again: descending; the header says so to assistive technology.
    await list().getByRole("button", { name: "Sort by VIP, descending" }).click();
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    expect(await list().getByRole("columnheader", { name: /VIP/ }).getAttribute("aria-sort")).toBe("descending");
    await list().getByRole("button", { name: "Sort by ports" }).click();
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    await list().getByRole("button", { name: "Sort by VIP" }).click();

    await page.getByLabel("Search").fill(B10);
    await expectNames(["charlie", "bravo", "alpha"]);
    await expectText(page.getByTestId("farm-count"), "3 of 5 farms");
    await list().getByRole("link", { name: "bravo", exact: true }).click();
    await expectUrl(page, url("/farms/bravo"));
    await page.goBack();
    await expectValue(page.getByLabel("Search"), B10);
    await expectNames(["charlie", "bravo", "alpha"]);
    const params = new URL(page.url()).searchParams;
    expect([params.get("q"), params.get("sort")]).toEqual([B10, "vip"]);
    // A reload (or a shared link) shows the same list.
    await page.reload();
    await expectNames(["charlie", "bravo", "alpha"]);
  });

  it("stops one farm from the list after its confirmation, and starts it again", async () => {
    await page.goto(url("/?q=alpha"));
    await expectNames(["alpha"]);
    await clearToasts();
    await list().getByRole("button", { name: "Stop farm alpha" }).click();
    const dialog = page.getByRole("dialog", { name: "Stop farm alpha?" });
    await expectText(dialog, "198.51.100.25:8001");
    // It opens on Cancel; Cancel changes nothing.
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await expectHidden(dialog);
    expect(c.query<{ status: string }>('SELECT status FROM "Farm" WHERE name = ?', "alpha")[0]?.status).toBe("up");

    await list().getByRole("button", { name: "Stop farm alpha" }).click();
    await dialog.getByRole("button", { name: "Stop farm" }).click();
    await expectText(toasts(page, "success"), /Farm alpha stopped/, { timeout: 30_000 });
    expect(await iptablesSave(c.target, "nat")).not.toMatch(/FARM_alpha_/);
    await expectText(list().getByRole("row").filter({ hasText: "alpha" }), "stopped");
    await clearToasts();
    await list().getByRole("button", { name: "Start farm alpha" }).click();
    await expectText(toasts(page, "success"), /Farm alpha started/, { timeout: 30_000 });
    expect(await iptablesSave(c.target, "nat")).toMatch(/FARM_alpha_/);
  });

  it("drains a backend address across exactly the 3 farms that have it, in one confirmation", async () => {
    const before = await mangle();
    for (const m of marks()) expect(marksNew(before, m.mark), `${m.farm} ${m.ip}`).toBe(true);
    await page.goto(url(`/?q=${B10}`));
    await expectNames(["alpha", "bravo", "charlie"]);
    await list().getByRole("checkbox", { name: "Select all 3 farms shown" }).check();
    const bar = page.getByRole("toolbar", { name: "Selected farms" });
    await expectText(bar, "3 farms selected");
    // The drain field starts with the address searched for.
    await expectValue(bar.getByLabel("Backend address to drain"), B10);
    await clearToasts();
    await bar.getByRole("button", { name: `Drain ${B10} in 3 selected farms` }).click();
    const dialog = page.getByRole("dialog", { name: `Drain backend ${B10} in 3 farms?` });
    expect((await dialog.getByRole("list", { name: "Farms where it drains" }).getByRole("listitem").allInnerTexts()).map((s) => s.split(" ")[0])).toEqual(["alpha", "bravo", "charlie"]);
    await dialog.getByRole("button", { name: "Drain in 3 farms" }).click();
    await expectText(toasts(page, "success"), `Backend ${B10} is draining in 3 farms: alpha, bravo, charlie`, { timeout: 30_000 });
    await expectHidden(bar);

    const after = await mangle();
    for (const m of marks()) {
      const drained = m.ip === B10;
      expect(m.state, `${m.farm} ${m.ip} in the database`).toBe(drained ? "maintenance" : "up");
      expect(marksNew(after, m.mark), `${m.farm} ${m.ip} marked in the kernel`).toBe(!drained);
    }
    // One apply for the three, logged as one.
    const log = c.query<{ action: string; farms: string }>('SELECT action, farms FROM "ApplyLog" ORDER BY id DESC LIMIT 1')[0]!;
    expect(log.action).toBe(`bulk drain backend ${B10} (3 farms)`);
  });

  it("an operator has no Delete, and a delete replayed from the operator's session is refused, audited, nothing changed", async () => {
    await c.loginAs("operator");
    await page.goto(url("/"));
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    await list().getByRole("checkbox", { name: "Select farm delta" }).check();
    const bar = page.getByRole("toolbar", { name: "Selected farms" });
    await expectText(bar, "1 farm selected");
    await expectCount(bar.getByRole("button", { name: /^Delete/ }), 0);
    const kernelBefore = await natRules();

    // The operator's own Stop request, turned into a delete on its way: the server decides, not the page.
    await page.route("**/*", async (route) => {
      const req = route.request();
      const body = req.postData();
      if (req.method() === "POST" && body && /name="_?\d*_?op"\r\n\r\nstop/.test(body)) {
        await route.continue({ postData: body.replace(/(name="_?\d*_?op"\r\n\r\n)stop/, "$1delete") });
      } else await route.continue();
    });
    try {
      await clearToasts();
      await bar.getByRole("button", { name: "Stop 1 selected farm" }).click();
      await page.getByRole("dialog", { name: "Stop 1 farm?" }).getByRole("button", { name: "Stop 1 farm" }).click();
      await expectText(toasts(page, "error"), /admin/i, { timeout: 30_000 });
    } finally {
      await page.unroute("**/*");
    }
    expect(c.query<{ name: string }>('SELECT name FROM "Farm" WHERE name = ?', "delta")).toHaveLength(1);
    expect(c.query<{ status: string }>('SELECT status FROM "Farm" WHERE name = ?', "delta")[0]?.status).toBe("up");
    expect(await natRules()).toBe(kernelBefore);
    const audit = c.query<{ actor: string; action: string; result: string }>('SELECT actor, action, result FROM "AuditEntry" ORDER BY id DESC LIMIT 1')[0]!;
    expect(audit).toMatchObject({ actor: "oper", result: "refused" });

    // A viewer gets no selection and no start/stop at all.
    await c.loginAs("viewer");
    await page.goto(url("/"));
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    await expectCount(list().getByRole("checkbox"), 0);
    await expectCount(list().getByRole("button", { name: /^(Stop|Start) farm/ }), 0);
    await expectCount(page.getByRole("toolbar", { name: "Selected farms" }), 0);
  });

  it("an admin deletes two farms in one confirmation: gone from the list, the database and the kernel; axe passes with the toolbar", async () => {
    await c.loginAs("admin");
    await page.goto(url("/"));
    await expectNames(["alpha", "bravo", "charlie", "delta", "echo"]);
    await list().getByRole("checkbox", { name: "Select farm delta" }).check();
    await list().getByRole("checkbox", { name: "Select farm echo" }).check();
    const bar = page.getByRole("toolbar", { name: "Selected farms" });
    await expectText(bar, "2 farms selected");
    expect(await seriousViolations(page)).toEqual([]);
    await clearToasts();
    await bar.getByRole("button", { name: "Delete 2 selected farms" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete 2 farms?" });
    await expectVisible(dialog);
    expect(await seriousViolations(page)).toEqual([]);
    expect((await dialog.getByRole("list", { name: "Farms to delete" }).getByRole("listitem").allInnerTexts()).map((s) => s.split(" ")[0])).toEqual(["delta", "echo"]);
    await dialog.getByRole("button", { name: "Delete 2 farms" }).click();
    await expectText(toasts(page, "success"), "2 farms deleted: delta, echo", { timeout: 30_000 });
    await expectNames(["alpha", "bravo", "charlie"]);
    expect(c.query<{ name: string }>('SELECT name FROM "Farm" ORDER BY name').map((r) => r.name)).toEqual(["alpha", "bravo", "charlie"]);
    const nat = await iptablesSave(c.target, "nat");
    expect(nat).not.toMatch(/FARM_(delta|echo)_/);
    expect(nat).toMatch(/FARM_alpha_/);
  });
});
