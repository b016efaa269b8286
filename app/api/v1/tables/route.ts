import { parseQuery } from "@/lib/api/input";
import { answer, json, read } from "@/lib/api/route";
import { TablesQuerySchema } from "@/lib/api/schemas";
import { consoleEnv } from "@/lib/console/env";
import { TABLES_MAX_RULES, tablesView } from "@/lib/console/tables-view";
import { apiError } from "@/lib/service/errors";
import { sharedTablesRead } from "@/lib/service/tables-read";

/**
 * GET /api/v1/tables?farm=&scope=natfarm|all: the live mangle and nat
 * tables with counters, read through the agent as the Live tables page
 * reads them (at most 600 rules; `hidden` counts the others).
 */
export const dynamic = "force-dynamic";

export function GET(req: Request) {
  return read(async () => {
    const q = parseQuery(req.url, TablesQuerySchema);
    if ("refusal" in q) return q.refusal;
    const { target } = consoleEnv();
    if (!target.target) return { status: 409, body: { error: "Applying is disabled (target none): there are no live tables to read.", issues: [] } };
    try {
      const snap = await sharedTablesRead(target.target, { scope: q.data.scope, farm: q.data.farm || undefined, maxRules: TABLES_MAX_RULES });
      return json(tablesView(snap, { farm: q.data.farm || undefined, scope: q.data.scope }));
    } catch (e) {
      const { status, body } = apiError(e);
      return answer({ status, body: { ...body, issues: [] } });
    }
  });
}
