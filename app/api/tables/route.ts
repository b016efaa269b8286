import { z } from "zod";
import { apiGuard } from "@/lib/auth/next";
import { consoleEnv } from "@/lib/console/env";
import { TablesPageQuery, tablesReadKind } from "@/lib/console/tables-query";
import { liveTablesView } from "@/lib/console/tables-view";
import { apiError } from "@/lib/service/errors";
import { sharedTablesRead } from "@/lib/service/tables-read";

/**
 * The live mangle and nat tables of the console's target, with counters
 * (polled by /tables). `farm` keeps one farm's rules, `scope=all` every
 * chain, `sort=packets|bytes` puts the busiest rules and chains first,
 * `traffic=1` leaves out rules that never matched, `chain=<table> <chain>`
 * expands one chain; at most 600 rules come back (5,000 for one chain), each
 * chain saying how many it holds. `full=1` returns the whole snapshot. While
 * the agent is down: 503 with `agentUnavailable` (the page's banner).
 */
export const dynamic = "force-dynamic";

export async function GET(req: Request) {
  const { refusal } = await apiGuard();
  if (refusal) return refusal;
  const { target } = consoleEnv();
  if (!target.target) {
    return Response.json({ error: "Applying is disabled (target none): there are no live tables to read." }, { status: 409 });
  }
  const params = new URL(req.url).searchParams;
  const q = TablesPageQuery.safeParse(Object.fromEntries(params));
  if (!q.success) return Response.json({ error: z.prettifyError(q.error) }, { status: 400, headers: { "Cache-Control": "no-store" } });
  try {
    const opts = q.data;
    if (opts.full) {
      const snap = await sharedTablesRead(target.target, { scope: "all" });
      return Response.json(snap, { headers: { "Cache-Control": "no-store" } });
    }
    const snap = await sharedTablesRead(target.target, tablesReadKind(opts));
    return Response.json(liveTablesView(snap, opts), { headers: { "Cache-Control": "no-store" } });
  } catch (e) {
    const { status, body } = apiError(e);
    return Response.json(body, { status, headers: { "Cache-Control": "no-store" } });
  }
}
