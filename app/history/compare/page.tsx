import type { Metadata } from "next";
import Link from "next/link";
import { requireUser } from "@/lib/auth/next";
import { farmService } from "@/lib/console/farm-service";
import { ConfigDiff } from "@/components/history/config-diff";
import { buttonClass } from "@/components/ui/button";
import { inputClass } from "@/components/ui/field";
import { Card, PageTitle } from "@/components/ui/card";

export const metadata: Metadata = { title: "Compare revisions" };

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.trim() ?? "";

/** Any two revisions (or one and the configuration now) compared: farms and rendered rules. The choice lives in the URL. */
export default async function ComparePage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  await requireUser();
  const q = await searchParams;
  const fromText = one(q.from);
  const toText = one(q.to);
  const bad = [fromText && !/^\d{1,9}$/.test(fromText) ? `from: "${fromText.slice(0, 20)}" is not a revision number` : "", toText && !/^\d{1,9}$/.test(toText) ? `to: "${toText.slice(0, 20)}" is not a revision number` : ""].filter(Boolean);
  const service = await farmService();
  const result = !bad.length && fromText ? await service.compare(Number(fromText), toText ? Number(toText) : null) : null;
  const label = (t: string) => (t ? `#${t}` : "now");
  return (
    <>
      <PageTitle
        title="Compare configurations"
        subtitle={fromText && !bad.length ? `From revision ${label(fromText)} to ${label(toText)}.` : "Choose two revisions (leave To empty for the configuration now)."}
        actions={
          <Link href="/history" className={buttonClass("ghost", "sm")}>
            All revisions
          </Link>
        }
      />
      <form method="get" action="/history/compare" aria-label="Choose the revisions to compare" className="mb-4 flex flex-wrap items-end gap-3">
        <label className="text-xs text-muted">
          From revision
          <input name="from" defaultValue={fromText} inputMode="numeric" className={`${inputClass} mt-1 block w-28`} />
        </label>
        <label className="text-xs text-muted">
          To revision (empty: now)
          <input name="to" defaultValue={toText} inputMode="numeric" className={`${inputClass} mt-1 block w-28`} />
        </label>
        <button type="submit" className={buttonClass("primary", "md")}>
          Compare
        </button>
      </form>
      {bad.length > 0 && (
        <p role="alert" className="mb-3 text-sm text-bad">
          {bad.join("; ")}.
        </p>
      )}
      {result && !("diffs" in result) && (
        <p role="alert" className="mb-3 text-sm text-bad">
          {result.message}
        </p>
      )}
      {result && "diffs" in result && (
        <Card title={`${result.diffs.length} farm${result.diffs.length === 1 ? "" : "s"} differ`} titleId="compare-title">
          <ConfigDiff diffs={result.diffs} />
        </Card>
      )}
    </>
  );
}
