import { apiGuard } from "@/lib/auth/next";
import { consoleEnv } from "@/lib/console/env";
import { TABLES_MAX_RULES, tablesView } from "@/lib/console/tables-view";
import { apiError } from "@/lib/service/errors";
import { sharedTablesRead } from "@/lib/service/tables-read";

/**
 * The live mangle and nat tables of the console's target, with counters
 * (polled by /tables). `farm` keeps one farm's rules, `scope=all` every
 * chain; at most 600 rules come back (`hidden` counts the others). `full=1`
 * returns the whole snapshot. While the agent is down: 503 with
 * `agentUnavailable` (the page's banner).
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
  try {
    const farm = params.get("farm")?.trim() || undefined;
    const scope = params.get("scope") === "all" || params.get("full") === "1" ? "all" : "natfarm";
    const snap = await sharedTablesRead(target.target, { scope, farm, maxRules: TABLES_MAX_RULES });
    if (params.get("full") === "1") return Response.json(snap, { headers: { "Cache-Control": "no-store" } });
    const view = tablesView(snap, { farm, scope });
    return Response.json(view, { headers: { "Cache-Control": "no-store" } });
  } catch (e) {
    const { status, body } = apiError(e);
    return Response.json(body, { status, headers: { "Cache-Control": "no-store" } });
  }
}
