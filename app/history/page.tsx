import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import Link from "next/link";
import { LogTable, UtcTime } from "@/components/ui/log-table";
import { Badge } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { farmService } from "@/lib/console/farm-service";
import { toEvent } from "@/lib/console/farm-live";
import { HealthEventsTable } from "@/components/history/health-events-table";
import { recentAudit } from "@/lib/auth/audit";
import { consoleDb } from "@/lib/console/db";

export const metadata: Metadata = { title: "History" };

const LIMIT = 500;

function farmsOf(json: string): string[] {
  try {
    const v = JSON.parse(json);
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

export default async function HistoryPage() {
  await requireUser();
  const service = await farmService();
  const [entries, events, audit] = await Promise.all([service.history(LIMIT), service.healthEvents({ limit: 200 }), consoleDb().then((db) => recentAudit(db, 200))]);
  return (
    <>
      <PageTitle title="History" subtitle={`Every apply the console made, newest first (last ${LIMIT}), and the health checker's state changes.`} />
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
                  <Badge tone={e.result === "ok" ? "ok" : e.result === "failed" ? "bad" : "neutral"}>{e.result === "noop" ? "no change" : e.result}</Badge>
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
      <Card title="Audit log" titleId="audit-log-title" className="mb-5" actions={<span className="text-xs text-muted">logins, refusals, changes, users and tokens · last 200</span>}>
        <LogTable
          label="Audit log"
          minWidth="min-w-[48rem]"
          columns={[{ label: "When" }, { label: "Who" }, { label: "From" }, { label: "What" }, { label: "Result" }, { label: "Details" }]}
          empty="Nothing recorded yet."
          isEmpty={audit.length === 0}
        >
          {audit.map((a) => (
            <tr key={a.id} className="border-b border-line last:border-0">
              <td className="px-4 py-2 whitespace-nowrap">
                <UtcTime at={a.at} />
              </td>
              <td className="px-2 py-2">
                {a.actor ?? <span className="text-muted">nobody</span>} <span className="text-xs text-muted">({a.via})</span>
              </td>
              <td className="px-2 py-2 font-mono text-xs">{a.address ?? ""}</td>
              <td className="px-2 py-2">{a.action}</td>
              <td className="px-2 py-2">
                <Badge tone={a.result === "ok" ? "ok" : "bad"}>{a.result}</Badge>
              </td>
              <td className="max-w-md px-4 py-2 text-xs break-words text-muted">{a.detail}</td>
            </tr>
          ))}
        </LogTable>
      </Card>
      <Card title="Health events" titleId="health-events-title" actions={<span className="text-xs text-muted">live · last 200</span>}>
        <HealthEventsTable initial={events.map(toEvent)} />
      </Card>
    </>
  );
}
