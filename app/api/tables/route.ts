import { readTables } from "@/lib/applier/index";
import { consoleEnv } from "@/lib/console/env";

/** The live mangle and nat tables of the console's target, with counters (polled by /tables). */
export const dynamic = "force-dynamic";

export async function GET() {
  const { target } = consoleEnv();
  if (!target.target) {
    return Response.json({ error: "Applying is disabled (target none): there are no live tables to read." }, { status: 409 });
  }
  try {
    return Response.json(await readTables(target.target), { headers: { "Cache-Control": "no-store" } });
  } catch (e) {
    return Response.json({ error: (e as Error).message }, { status: 502 });
  }
}
