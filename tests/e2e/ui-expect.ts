import type { Locator, Page } from "playwright-core";
import { expect } from "vitest";

/**
 * Web-first assertions for playwright-core under vitest (@playwright/test's
 * `expect` is not part of playwright-core): each one retries until the page
 * agrees or the timeout passes, then fails with vitest's usual diff.
 */
export const UI_TIMEOUT = 20_000;

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
