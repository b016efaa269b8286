import { createRequire } from "node:module";
import type { Locator, Page, Request } from "playwright-core";
import { expect } from "vitest";

/**
 * Web-first assertions for playwright-core under vitest (@playwright/test's
 * `expect` is not part of playwright-core): each one retries until the page
 * agrees or the timeout passes, then fails with vitest's usual diff.
 */
export const UI_TIMEOUT = 20_000;

/** The page's sonner toasts (of one type, if given). */
export function toastsOf(p: Page, type?: "success" | "error" | "loading"): Locator {
  const all = p.getByRole("region", { name: /^Notifications/ }).locator("[data-sonner-toast]");
  return type ? all.and(p.locator(`[data-type="${type}"]`)) : all;
}

type Opts = { timeout?: number; message?: string };
const poll = <T>(fn: () => Promise<T>, o: Opts = {}) => expect.poll(fn, { timeout: o.timeout ?? UI_TIMEOUT, interval: 200, message: o.message });

/** Every match's text, joined; "" when nothing matches (never throws). */
export async function textOf(l: Locator): Promise<string> {
  try {
    return (await l.allInnerTexts()).join("\n");
  } catch {
    return "";
  }
}

export async function expectText(l: Locator, want: string | RegExp, o?: Opts): Promise<void> {
  if (typeof want === "string") await poll(() => textOf(l), o).toContain(want);
  else await poll(() => textOf(l), o).toMatch(want);
}

export async function expectNoText(l: Locator, unwanted: string, o?: Opts): Promise<void> {
  await poll(() => textOf(l), o).not.toContain(unwanted);
}

export async function expectCount(l: Locator, n: number, o?: Opts): Promise<void> {
  await poll(() => l.count(), o).toBe(n);
}

export async function expectVisible(l: Locator, o?: Opts): Promise<void> {
  await l.waitFor({ state: "visible", timeout: o?.timeout ?? UI_TIMEOUT });
}

export async function expectHidden(l: Locator, o?: Opts): Promise<void> {
  await l.waitFor({ state: "hidden", timeout: o?.timeout ?? UI_TIMEOUT });
}

export async function expectAttribute(l: Locator, name: string, want: string | RegExp | null, o?: Opts): Promise<void> {
  const get = () => l.getAttribute(name, { timeout: 1000 }).catch(() => "<absent element>");
  if (want === null || typeof want === "string") await poll(get, o).toBe(want);
  else await poll(get, o).toMatch(want);
}

export async function expectValue(l: Locator, want: string, o?: Opts): Promise<void> {
  await poll(() => l.inputValue({ timeout: 1000 }).catch(() => "<absent element>"), o).toBe(want);
}

export async function expectUrl(p: Page, want: string, o?: Opts): Promise<void> {
  await poll(async () => p.url(), o).toBe(want);
}

/**
 * The accessible description of a control, computed as assistive technology
 * does for aria-describedby: the referenced elements' text, in order.
 */
export async function accessibleDescription(l: Locator): Promise<string> {
  return l.evaluate((el) =>
    (el.getAttribute("aria-describedby") ?? "")
      .split(/\s+/)
      .filter(Boolean)
      .map((id) => el.ownerDocument.getElementById(id)?.textContent?.trim() ?? "")
      .filter(Boolean)
      .join(" "),
  );
}

export async function expectDescription(l: Locator, want: RegExp, o?: Opts): Promise<void> {
  await poll(() => accessibleDescription(l).catch(() => ""), o).toMatch(want);
}

/** The elements that describe a control (its error message among them). */
export async function describers(l: Locator): Promise<Locator[]> {
  const ids = ((await l.getAttribute("aria-describedby")) ?? "").split(/\s+/).filter(Boolean);
  return ids.map((id) => l.page().locator(`[id="${id}"]`));
}

/** A server action request as the browser sent it. */
export interface CapturedAction {
  headers: Record<string, string>;
  body: string;
  path: string;
}

/**
 * Runs `click` and captures the server action request the browser sends,
 * without letting it reach the server: the tests replay it as another user
 * (a lower role) to show the server refuses what the page did not offer.
 */
export async function captureAction(page: Page, baseUrl: string, click: () => Promise<void>): Promise<CapturedAction> {
  let captured: CapturedAction | null = null;
  await page.route(
    (u) => u.href.startsWith(baseUrl),
    async (route) => {
      const r: Request = route.request();
      if (r.method() === "POST" && r.headers()["next-action"]) {
        captured = { headers: r.headers(), body: r.postData() ?? "", path: new URL(r.url()).pathname };
        await route.abort();
      } else await route.continue();
    },
  );
  try {
    await click();
    await expect.poll(() => captured !== null, { timeout: 15_000 }).toBe(true);
  } finally {
    await page.unrouteAll({ behavior: "wait" });
  }
  return captured!;
}

/** The captured request's headers with `cookie`'s session instead of the capturer's. */
export function replayHeaders(a: CapturedAction, cookie: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.headers)) if (!/^(cookie|host|content-length|connection)$/i.test(k)) headers[k] = v;
  return { ...headers, Cookie: cookie };
}

/** axe-core's script (a dev dependency: missing, the file fails, it never skips the check). */
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/**
 * axe-core's serious and critical violations of the page's own content (its
 * <main>; the header around it is the whole-console test's, tests/e2e/a11y.test.ts).
 */
export async function mainAxeViolations(p: Page): Promise<string[]> {
  return axeViolationsOf(p, "main");
}

/** The same for the first element matching `selector` (the whole document when none does). */
export async function axeViolationsOf(p: Page, selector: string): Promise<string[]> {
  if (!(await p.evaluate(() => "axe" in window))) await p.addScriptTag({ path: AXE });
  const violations = (await p.evaluate(async (sel) => {
    const axe = (window as unknown as { axe: { run: (ctx: Element | Document, o: object) => Promise<{ violations: unknown[] }> } }).axe;
    return (await axe.run(document.querySelector(sel) ?? document, { resultTypes: ["violations"] })).violations;
  }, selector)) as { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")})`);
}
