import type { Farm } from "./schema.ts";

/**
 * Farm lists the shared schema produced whole (FarmListSchema: each farm and
 * the checks across farms), so that the applier does not check the same
 * objects a second time in the same process: a cold `natfarm apply` of 5,000
 * farms spent 0.15–0.2 s of CPU on that second pass. Only the list object the
 * schema returned counts (a copy, or a list put together by hand, is checked
 * again); its holders treat it as read-only, as they treat every parsed value.
 */
const lists = new WeakSet<object>();

export function noteValidatedList(farms: readonly Farm[]): void {
  lists.add(farms);
}

export function isValidatedList(value: unknown): value is Farm[] {
  return typeof value === "object" && value !== null && lists.has(value);
}
