import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import Link from "next/link";
import { LogTable, UtcTime } from "@/components/ui/log-table";
import { Badge } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { farmService } from "@/lib/console/farm-service";
import { toEvent } from "@/lib/console/farm-live";
import { HealthEventsTable } from "@/components/history/health-events-table";
import { AuditFilterSchema, auditFilterInput, queryAudit, type AuditFilter, type AuditRow } from "@/lib/auth/audit";
import { can } from "@/lib/auth/roles";
import { consoleDb } from "@/lib/console/db";
import { AuditFilters, AuditPaging, AuditTable, FILTER_KEYS, filterQuery } from "@/components/history/audit-log";
import { buttonClass } from "@/components/ui/button";
import { RevisionsTable } from "@/components/history/revisions-table";
import { RestoreBackup } from "@/components/history/restore-backup";
import { ActionButton } from "@/components/ui/action-button";
import { setStagingAction } from "@/lib/actions/staging";
import { SessionStagingToggle } from "@/components/session-staging";

export const metadata: Metadata = { title: "History" };

const LIMIT = 500;
const REVISIONS = 50;

function farmsOf(json: string): string[] {
  try {
    const v = JSON.parse(json);
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

type AuditView =
  | { kind: "admins-only" }
  | { kind: "bad-filter"; raw: Record<string, string>; message: string }
  | { kind: "shown"; raw: Record<string, string>; filter: AuditFilter; rows: AuditRow[] };

/** The audit card's filter from the URL; only administrators read the log. */
async function auditView(role: string, params: Record<string, string | string[] | undefined>): Promise<AuditView> {
  if (!can(role, "administer")) return { kind: "admins-only" };
  const picked = Object.fromEntries(FILTER_KEYS.map((k) => [k, params[k]]));
  const input = auditFilterInput(picked);
  const raw = Object.fromEntries(Object.entries(input).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : String(v)]));
  const parsed = AuditFilterSchema.safeParse(input);
  if (!parsed.success) return { kind: "bad-filter", raw, message: parsed.error.issues.map((i) => `${i.path.join(".") || "filter"}: ${i.message}`).join("; ") };
  return { kind: "shown", raw, filter: parsed.data, rows: await queryAudit(await consoleDb(), parsed.data) };
}

export default async function HistoryPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const user = await requireUser();
  const service = await farmService();
  const params = await searchParams;
  const revBefore = typeof params.revBefore === "string" && /^\d{1,9}$/.test(params.revBefore) ? Number(params.revBefore) : undefined;
  const [entries, events, audit, revisions] = await Promise.all([
    service.history(LIMIT),
    service.healthEvents({ limit: 200 }),
    auditView(user.role, params),
    service.revisions({ limit: REVISIONS + 1, before: revBefore }),
  ]);
  const staging = await service.staging({ session: user.sessionId });
  const older = revisions.length > REVISIONS ? revisions[REVISIONS - 1]!.id : null;
  return (
    <>
      <PageTitle title="History" subtitle={`Every configuration change as a revision, every apply the console made (last ${LIMIT}), and the health checker's state changes.`} />
      <Card
        title="Configuration history"
        titleId="config-history-title"
        className="mb-5"
        actions={
          <>
            <span className="text-xs text-muted">a revision of the whole configuration per change · health checks are state, not configuration</span>
            <Link href="/history/compare" className={buttonClass("secondary", "sm")}>
              Compare…
            </Link>
            <a href="/history/backup.json" className={buttonClass("secondary", "sm")} download>
              Download backup
            </a>
          </>
        }
      >
        <div className="flex flex-wrap items-center gap-3 border-b border-line px-4 py-3 text-sm" data-testid="staging-setting">
          <p>
            <strong className="font-semibold">Stage changes: {staging.enabled ? "on" : "off"}.</strong>{" "}
            <span className="text-muted">
              {staging.enabled
                ? "Edits change the configuration only; the banner's Apply changes commits them all in one transaction, Discard drops them."
                : "Every edit is applied to the kernel at once (the default)."}
            </span>
          </p>
          {can(user.role, "administer") && (
            <ActionButton action={setStagingAction} fields={{ staging: staging.enabled ? "off" : "on" }} size="sm" pendingText="Saving…">
              {staging.enabled ? "Apply edits at once" : "Stage changes"}
            </ActionButton>
          )}
          {!staging.enabled && can(user.role, "operate") && (
            // A div: the toggle is a form, which a <p> cannot hold (the browser would close it, and hydration fail).
            <div className="flex flex-wrap items-center gap-2" data-testid="session-staging-setting">
              <span className="text-muted">This login: {staging.session ? "your edits are staged until Apply changes." : "your edits are applied at once."}</span>
              <SessionStagingToggle on={staging.session} />
            </div>
          )}
        </div>
        {can(user.role, "administer") && (
          <div className="border-b border-line px-4 py-3">
            <RestoreBackup />
          </div>
        )}
        <RevisionsTable revisions={revisions.slice(0, REVISIONS)} />
        {(older || revBefore) && (
          <nav aria-label="Revision pages" className="flex gap-3 border-t border-line px-4 py-2 text-sm">
            {revBefore && (
              <Link href="/history" className="text-accent hover:underline">
                Newest revisions
              </Link>
            )}
            {older && (
              <Link href={`/history?revBefore=${older}`} className="text-accent hover:underline">
                Older revisions
              </Link>
            )}
          </nav>
        )}
      </Card>
      <Card title="Apply log" titleId="apply-log-title" className="mb-5">
        <LogTable
          label="Apply log"
          minWidth="min-w-[56rem]"
          columns={[{ label: "When" }, { label: "Action" }, { label: "Farms" }, { label: "Target" }, { label: "Result" }, { label: "Time", className: "px-2 py-2 text-right" }, { label: "Details" }]}
          empty="Nothing applied yet."
          isEmpty={entries.length === 0}
        >
          {entries.map((e) => {
            const farms = farmsOf(e.farms);
            return (
              <tr key={e.id} className="border-b border-line align-top last:border-0">
                <td className="px-4 py-2 whitespace-nowrap">
                  <UtcTime at={e.at} />
                </td>
                <td className="px-2 py-2">{e.action}</td>
                <td className="px-2 py-2">
                  {farms.length > 3
                    ? `${farms.length} farms`
                    : farms.map((f, i) => (
                        <span key={f}>
                          {i > 0 && ", "}
                          <Link href={`/farms/${encodeURIComponent(f)}`} className="text-accent hover:underline">
                            {f}
                          </Link>
                        </span>
                      ))}
                </td>
                <td className="px-2 py-2 font-mono text-xs">{e.target}</td>
                <td className="px-2 py-2">
                  <Badge tone={e.result === "ok" ? "ok" : e.result === "failed" ? "bad" : "neutral"}>{e.result === "noop" ? "no rule change" : e.result}</Badge>
                </td>
                <td className="px-2 py-2 text-right tabular-nums">{e.durationMs} ms</td>
                <td className="max-w-md px-4 py-2 text-xs">
                  {e.error ? <span className="break-words text-bad">{e.error}</span> : <span className="text-muted">{e.summary}</span>}
                </td>
              </tr>
            );
          })}
        </LogTable>
      </Card>
      <Card
        title="Audit log"
        titleId="audit-log-title"
        className="mb-5"
        actions={
          audit.kind === "shown" ? (
            <>
              <span className="text-xs text-muted">logins, refusals, changes (the farm before and after), users and tokens · {audit.filter.limit} per page</span>
              <a href={`/history/audit.jsonl${filterQuery(audit.filter, { withCursor: false, withLimit: false })}`} className={buttonClass("secondary", "sm")} download>
                Export JSON lines
              </a>
            </>
          ) : null
        }
      >
        {audit.kind === "admins-only" ? (
          <p className="px-4 py-4 text-sm text-muted" data-testid="audit-admins-only">
            The audit log is for administrators (as GET /api/v1/audit is): you are signed in as {user.role}.
          </p>
        ) : (
          <>
            <AuditFilters filter={audit.kind === "shown" ? audit.filter : {}} raw={audit.raw} />
            {audit.kind === "bad-filter" ? (
              <p role="alert" className="px-4 py-4 text-sm text-bad">
                The filter is not valid: {audit.message}. Nothing is shown; change it or clear it.
              </p>
            ) : (
              <>
                <AuditTable rows={audit.rows} />
                <AuditPaging filter={audit.filter} rows={audit.rows} />
              </>
            )}
          </>
        )}
      </Card>
      <Card title="Health events" titleId="health-events-title" actions={<span className="text-xs text-muted">live · last 200</span>}>
        <HealthEventsTable initial={events.map(toEvent)} />
      </Card>
    </>
  );
}
