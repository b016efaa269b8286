import { parseQuery } from "@/lib/api/input";
import { answer, caller, json, NO_STORE, refuse } from "@/lib/api/route";
import { AuditQuerySchema } from "@/lib/api/schemas";
import { auditRecord, queryAudit } from "@/lib/auth/audit";
import { consoleDb } from "@/lib/console/db";

/**
 * GET /api/v1/audit?actor=&farm=&kind=&result=&since=&until=&before=&limit=
 * (admin): the audit log, newest first; `{"entries": [...], "next": id}`,
 * or JSON lines with `Accept: application/x-ndjson` or `format=jsonl`.
 * Admins only: the log names every user, their addresses and what each
 * refused request tried.
 */
export const dynamic = "force-dynamic";

export async function GET(req: Request) {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "administer", "reading the audit log");
  if (no) return no;
  const q = parseQuery(req.url, AuditQuerySchema);
  if ("refusal" in q) return answer(q.refusal);
  const { format, ...filter } = q.data;
  const rows = await queryAudit(await consoleDb(), filter);
  const entries = rows.map(auditRecord);
  const lines = format === "jsonl" || (format === undefined && /application\/x-ndjson/i.test(req.headers.get("accept") ?? ""));
  if (lines) {
    return new Response(entries.map((e) => `${JSON.stringify(e)}\n`).join(""), { headers: { ...NO_STORE, "Content-Type": "application/x-ndjson; charset=utf-8" } });
  }
  return json({ entries, next: rows.length === filter.limit ? (rows[rows.length - 1]?.id ?? null) : null });
}
