import { AuditFilterSchema, auditFilterInput, auditJsonLines } from "@/lib/auth/audit";
import { guard } from "@/lib/auth/next";
import { consoleDb } from "@/lib/console/db";

/**
 * History's "Export JSON lines": the entries the filter in the query string
 * selects (the same AuditFilterSchema as the page and GET /api/v1/audit),
 * one auditRecord per line, newest first, streamed. Every matching entry
 * unless `limit` is given; the page's cursor (`before`) is honoured when
 * present. Administrators only, as the audit card and the REST API's audit
 * endpoint: the log holds every user's addresses and what they tried.
 */
export const dynamic = "force-dynamic";

const NO_STORE = { "Cache-Control": "no-store" };

export async function GET(req: Request): Promise<Response> {
  const g = await guard("administer", "exporting the audit log");
  if (!g.ok) return Response.json({ error: g.message }, { status: g.status, headers: NO_STORE });
  const params = new URL(req.url).searchParams;
  const parsed = AuditFilterSchema.safeParse(auditFilterInput(params));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    return Response.json({ error: "the filter is not valid: nothing was exported", issues }, { status: 400, headers: NO_STORE });
  }
  const db = await consoleDb();
  const lines = auditJsonLines(db, parsed.data, params.has("limit") ? parsed.data.limit : undefined);
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await lines.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  return new Response(body, {
    headers: { ...NO_STORE, "Content-Type": "application/x-ndjson; charset=utf-8", "Content-Disposition": `attachment; filename="natfarm-audit-${stamp}Z.jsonl"`, "X-Content-Type-Options": "nosniff" },
  });
}
