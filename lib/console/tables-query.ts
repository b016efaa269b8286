import { z } from "zod";
import { FARM_NAME_MAX } from "../farms/schema.ts";
import type { TablesReadKind } from "../service/tables-read.ts";
import { needsFullRead, TABLE_SORTS, TABLES_MAX_RULES, type LiveTablesOptions } from "./tables-view.ts";

/**
 * The Live tables page's filters, as its URL and GET /api/tables carry them
 * (`?farm=web&scope=all&sort=packets&traffic=1`): one schema for both, so a
 * shared link shows what the API would answer, and a bad value is refused
 * by the API (400) rather than guessed at.
 */
const flag = z.enum(["0", "1"], { error: "must be 0 or 1" }).transform((v) => v === "1");

export const TablesPageQuery = z.strictObject({
  farm: z.string().trim().max(FARM_NAME_MAX, { error: `farm must be at most ${FARM_NAME_MAX} characters` }).optional().transform((v) => v || undefined),
  scope: z.enum(["natfarm", "all"], { error: 'scope must be "natfarm" or "all"' }).default("natfarm"),
  sort: z.enum(TABLE_SORTS, { error: 'sort must be "rule", "packets" or "bytes"' }).default("rule"),
  traffic: flag.default(false),
  // "<table> <chain>": the one chain to expand.
  chain: z.string().trim().max(200, { error: "chain must be at most 200 characters" }).optional().transform((v) => v || undefined),
  full: flag.default(false),
});
export type TablesPageFilters = z.output<typeof TablesPageQuery>;

/** What the page's URL asks for; anything malformed falls back to the default view. */
export function pageFilters(params: Record<string, string | string[] | undefined>): TablesPageFilters {
  const one: Record<string, string> = {};
  for (const k of ["farm", "scope", "sort", "traffic", "chain"]) {
    const v = params[k];
    if (typeof v === "string") one[k] = v;
  }
  const q = TablesPageQuery.safeParse(one);
  return q.success ? q.data : TablesPageQuery.parse({});
}

/** The kernel read a view needs: counters decide what is shown only once every chain is read. */
export function tablesReadKind(opts: LiveTablesOptions): TablesReadKind {
  if (opts.farm) return { scope: "natfarm", farm: opts.farm, maxRules: TABLES_MAX_RULES };
  if ((opts.scope ?? "natfarm") === "all" || needsFullRead(opts)) return { scope: "all" };
  return { scope: "natfarm", maxRules: TABLES_MAX_RULES };
}
