import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { requireUser } from "@/lib/auth/next";
import { can } from "@/lib/auth/roles";
import { farmService } from "@/lib/console/farm-service";
import { compareConfigs } from "@/lib/service/config-diff";
import { revertAction } from "@/lib/actions/history";
import { ConfigDiff } from "@/components/history/config-diff";
import { Badge } from "@/components/ui/badge";
import { buttonClass } from "@/components/ui/button";
import { Card, PageTitle } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { UtcTime } from "@/components/ui/log-table";

export const metadata: Metadata = { title: "Revision" };

/**
 * One revision: who, how, when, what, its diff against the revision before
 * (the farms it changed, their JSON and rules), its export as a farm file,
 * and, for administrators, a revert that lists what it will change.
 */
export default async function RevisionPage({ params }: { params: Promise<{ id: string }> }) {
  const user = await requireUser();
  const { id: raw } = await params;
  if (!/^\d{1,9}$/.test(raw)) notFound();
  const id = Number(raw);
  const service = await farmService();
  const rev = await service.revision(id);
  if (!rev) notFound();
  const own = compareConfigs(
    rev.changes.flatMap((c) => (c.before ? [c.before] : [])),
    rev.changes.flatMap((c) => (c.after ? [c.after] : [])),
    service.kernel.engine,
  );
  const admin = can(user.role, "administer");
  const toHere = admin ? await service.compare(null, id) : null;
  const revertDiffs = toHere && "diffs" in toHere ? toHere.diffs : null;
  return (
    <>
      <PageTitle
        title={`Revision #${rev.id}`}
        subtitle={
          <>
            <UtcTime at={rev.at} /> · {rev.author} <Badge tone="neutral">{rev.via}</Badge> · {rev.summary}
          </>
        }
        actions={
          <>
            <Link href="/history" className={buttonClass("ghost", "sm")}>
              All revisions
            </Link>
            <Link href={`/history/compare?from=${rev.id}`} className={buttonClass("secondary", "sm")}>
              Compare with now
            </Link>
            <a href={`/history/revisions/${rev.id}/farms.json`} className={buttonClass("secondary", "sm")} download>
              Export as farm file
            </a>
            {admin && revertDiffs && (
              <ConfirmDialog
                trigger="Revert to this revision…"
                triggerSize="sm"
                title={`Revert to revision #${rev.id}?`}
                confirm="Revert"
                confirmTone="danger"
                action={revertAction}
                fields={{ revision: String(rev.id) }}
                disabled={revertDiffs.length === 0}
              >
                <p>The configuration becomes revision #{rev.id}&apos;s again, as a new revision, applied to the kernel in one transaction. What changes:</p>
                <ul className="mt-2 list-disc pl-5" data-testid="revert-changes">
                  {revertDiffs.map((d) => (
                    <li key={d.farm} className="break-words">
                      {d.words}
                    </li>
                  ))}
                </ul>
                <p className="mt-2 text-muted">Backends the health checker has down now stay down.</p>
              </ConfirmDialog>
            )}
          </>
        }
      />
      {admin && revertDiffs?.length === 0 && <p className="mb-3 text-sm text-muted">The configuration now is this revision&apos;s: there is nothing to revert.</p>}
      <Card title="What this revision changed" titleId="revision-diff-title">
        <ConfigDiff diffs={own} empty="This revision changed nothing that shows in the farms." />
      </Card>
    </>
  );
}
