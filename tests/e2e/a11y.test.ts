import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namespacesOf, startConsole, type Console } from "./harness.ts";
import { expectCount, expectVisible } from "./ui-expect.ts";

/**
 * Accessibility and phones, on every page: axe-core finds no serious or
 * critical violation in light and dark, on a desktop and on a 390 px phone,
 * and no page scrolls sideways on the phone (what does not fit scrolls
 * inside its own, keyboard-reachable region). One console and lab for the
 * file; the pages hold real data (a farm applied to the lab, a lab run).
 */
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let c: Console;
let page: Page;

beforeAll(async () => {
  c = await startConsole({ backends: 2, log: (m) => console.log(`[a11y] ${m}`) });
  page = c.page;
  await page.goto(`${c.baseUrl}/`);
  // A farm the lab can carry, one with the guide's addresses, and a lab run so that every table has rows.
  await page.getByRole("button", { name: "Lab example" }).click();
  await expectVisible(page.getByRole("table", { name: "Farms" }).getByRole("link", { name: "lab-example", exact: true }), { timeout: 60_000 });
  await page.getByRole("button", { name: "Guide example" }).click();
  await expectVisible(page.getByRole("table", { name: "Farms" }).getByRole("link", { name: "app", exact: true }), { timeout: 60_000 });
  await page.goto(`${c.baseUrl}/lab`);
  await page.getByLabel("Farm", { exact: true }).selectOption("lab-example");
  await page.getByLabel("Connections", { exact: true }).fill("20");
  await page.getByRole("button", { name: "Send connections" }).click();
  await page.getByRole("table", { name: "Lab results for lab-example" }).waitFor({ timeout: 60_000 });
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab), "namespaces left behind").toEqual([]);
}, 120_000);

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** axe-core's serious and critical violations of the page as it is now. */
async function seriousViolations(p: Page): Promise<string[]> {
  if (!(await p.evaluate(() => "axe" in window))) await p.addScriptTag({ path: AXE });
  const violations = (await p.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: unknown[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ["violations"] })).violations;
  })) as Violation[];
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, " ").slice(0, 160)}]` : ""}`).join("; ")}`);
}

/** How far the page scrolls sideways beyond the viewport (0: it does not). */
async function sidewaysOverflow(p: Page): Promise<number> {
  return p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** The outermost elements that stick out past the viewport's right edge (outside any scrolling box), for the failure message. */
async function overflowing(p: Page): Promise<string[]> {
  return p.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    const scrolls = (el: Element) => ["auto", "scroll", "hidden"].includes(getComputedStyle(el).overflowX);
    const walk = (el: Element) => {
      if (out.length >= 5) return;
      const r = el.getBoundingClientRect();
      if (r.right > width + 1 && r.width > 0) {
        const inner = [...el.children].filter((c) => c.getBoundingClientRect().right > width + 1);
        if (inner.length === 0 || scrolls(el)) {
          out.push(`<${el.tagName.toLowerCase()} class="${(el.getAttribute("class") ?? "").slice(0, 80)}"> right ${Math.round(r.right)}: ${(el.textContent ?? "").trim().slice(0, 60)}`);
          return;
        }
      }
      if (!scrolls(el)) for (const c of el.children) walk(c);
    };
    walk(document.body);
    return out;
  });
}

const PAGES: { name: string; path: string; ready: (p: Page) => Promise<void> }[] = [
  { name: "farms", path: "/", ready: async (p) => void (await p.getByRole("link", { name: "lab-example", exact: true }).waitFor()) },
  { name: "farm", path: "/farms/lab-example", ready: async (p) => void (await p.getByTestId("generated-rules").first().waitFor()) },
  { name: "live tables", path: "/tables", ready: async (p) => void (await p.getByRole("table", { name: /^nat NATFARM-DST-/ }).first().waitFor()) },
  {
    name: "lab",
    path: "/lab",
    ready: async (p) => {
      await p.getByLabel("Farm", { exact: true }).selectOption("lab-example");
      await p.getByLabel("Connections", { exact: true }).fill("10");
      await p.getByRole("button", { name: "Send connections" }).click();
      await p.getByRole("table", { name: "Lab results for lab-example" }).waitFor({ timeout: 60_000 });
    },
  },
  { name: "history", path: "/history", ready: async (p) => void (await p.getByRole("table", { name: "Apply log" }).getByRole("row").nth(1).waitFor()) },
  { name: "account", path: "/account", ready: async (p) => void (await p.getByRole("heading", { level: 1 }).waitFor()) },
  { name: "users", path: "/users", ready: async (p) => void (await p.getByRole("heading", { level: 1 }).waitFor()) },
  { name: "API reference", path: "/api-docs", ready: async (p) => void (await p.getByRole("heading", { level: 1 }).waitFor()) },
];

describe.sequential("every page, light and dark, desktop and phone", () => {
  for (const viewport of [DESKTOP, PHONE]) {
    for (const scheme of ["light", "dark"] as const) {
      it(`${viewport.width} px, ${scheme}: no serious or critical axe violation${viewport === PHONE ? ", no sideways page scroll" : ""}`, async () => {
        await page.setViewportSize(viewport);
        await page.emulateMedia({ colorScheme: scheme });
        const found: Record<string, string[]> = {};
        for (const target of PAGES) {
          await page.goto(`${c.baseUrl}${target.path}`);
          await target.ready(page);
          await expect.poll(() => page.locator("html").getAttribute("data-theme")).toBe(scheme);
          const v = await seriousViolations(page);
          if (viewport === PHONE) {
            const over = await sidewaysOverflow(page);
            if (over > 0) v.push(`the page scrolls sideways by ${over} px at ${viewport.width} px`, ...(await overflowing(page)));
          }
          if (v.length) found[target.name] = v;
        }
        expect(found).toEqual({});
      });
    }
  }

  it("the login page too, logged out, on a phone", async () => {
    const fresh = await c.context.browser()!.newContext({ ignoreHTTPSErrors: true, viewport: PHONE }).catch(() => null);
    // A persistent context has no browser object to make a second one from: log out of this one instead.
    const p = fresh ? await fresh.newPage() : page;
    if (!fresh) await c.context.clearCookies();
    try {
      for (const scheme of ["light", "dark"] as const) {
        await p.setViewportSize(PHONE);
        await p.emulateMedia({ colorScheme: scheme });
        await p.goto(`${c.baseUrl}/login`);
        await p.getByLabel("User name").waitFor();
        expect(await seriousViolations(p), scheme).toEqual([]);
        expect(await sidewaysOverflow(p)).toBe(0);
      }
    } finally {
      if (fresh) await fresh.close();
      else await c.loginAs("admin");
    }
  });
});

describe.sequential("phones (390 px)", () => {
  const inView = async (p: Page, l: ReturnType<Page["locator"]>) => {
    const box = await l.boundingBox();
    expect(box, "not rendered").not.toBeNull();
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
  };

  it("the farms list shows every farm's status", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${c.baseUrl}/`);
    const row = page.getByRole("table", { name: "Farms" }).getByRole("row").filter({ has: page.getByRole("link", { name: "lab-example", exact: true }) });
    await expectVisible(row);
    await inView(page, row.getByRole("cell").filter({ hasText: "running" }));
    await inView(page, page.getByRole("columnheader", { name: "Status" }));
  });

  it("the farm page shows each backend's share, state and actions without scrolling sideways", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${c.baseUrl}/farms/lab-example`);
    const list = page.getByRole("list", { name: "Backends of lab-example" });
    await expectCount(list.getByRole("listitem"), 2);
    const first = list.getByRole("listitem").first();
    await expect.poll(() => first.innerText()).toMatch(/50\.0 %/);
    await inView(page, first.getByText("50.0 %", { exact: true }).first());
    await inView(page, first.getByTestId(/^backend-state-/));
    for (const name of [/^Edit backend /, /^Drain backend /, /^Cut backend /, /^Remove backend /]) await inView(page, first.getByRole("button", { name }));
    expect(await sidewaysOverflow(page)).toBe(0);
    await page.setViewportSize(DESKTOP);
  });
});
