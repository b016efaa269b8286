import Link from "next/link";
import { AUDIT_KINDS, AUDIT_RESULTS, auditKind, type AuditFilter, type AuditRow } from "@/lib/auth/audit";
import { Badge } from "@/components/ui/badge";
import { buttonClass } from "@/components/ui/button";
import { inputClass } from "@/components/ui/field";
import { LogTable, UtcTime } from "@/components/ui/log-table";

/**
 * History's audit log: filters by actor, farm, kind and result as a plain
 * GET form, so the filter lives in the URL (a link to it shows the same
 * rows; Back goes back to the previous filter), paging by the `before`
 * cursor, and the export of what the filter selects as JSON lines.
 */
export const FILTER_KEYS = ["actor", "farm", "kind", "result", "since", "until", "before", "limit"] as const;

/** The filter as search parameters, without the page cursor when `withCursor` is false. */
export function filterQuery(f: Partial<AuditFilter>, o: { before?: number; withCursor?: boolean; withLimit?: boolean } = {}): string {
  const q = new URLSearchParams();
  if (f.actor) q.set("actor", f.actor);
  if (f.farm) q.set("farm", f.farm);
  if (f.kind) q.set("kind", f.kind);
  if (f.result) q.set("result", f.result);
  if (f.since) q.set("since", f.since.toISOString());
  if (f.until) q.set("until", f.until.toISOString());
  if (o.withLimit !== false && f.limit && f.limit !== 200) q.set("limit", String(f.limit));
  const before = o.before ?? (o.withCursor !== false ? f.before : undefined);
  if (before) q.set("before", String(before));
  const s = q.toString();
  return s ? `?${s}` : "";
}

const DETAIL_SHOWN = 240;

function Detail({ text }: { text: string | null }) {
  if (!text) return null;
  if (text.length <= DETAIL_SHOWN) return <span>{text}</span>;
  return (
    <details>
      <summary className="cursor-pointer">{text.slice(0, DETAIL_SHOWN)}… <span className="text-accent">more</span></summary>
      <pre className="mt-1 max-h-80 overflow-auto font-mono text-[11px] break-all whitespace-pre-wrap" tabIndex={0} aria-label="The entry's whole detail">
        {text}
      </pre>
    </details>
  );
}

export function AuditFilters({ filter, raw }: { filter: Partial<AuditFilter>; raw: Record<string, string> }) {
  const value = (k: string) => raw[k] ?? "";
  return (
    <form method="get" action="/history" aria-label="Filter the audit log" className="flex flex-wrap items-end gap-3 border-b border-line px-4 py-3">
      <TextFilter id="audit-actor" name="actor" label="Actor" value={value("actor")} />
      <TextFilter id="audit-farm" name="farm" label="Farm" value={value("farm")} />
      <ChoiceFilter id="audit-kind" name="kind" label="Kind" value={filter.kind} choices={AUDIT_KINDS} />
      <ChoiceFilter id="audit-result" name="result" label="Result" value={filter.result} choices={AUDIT_RESULTS} />
      <button type="submit" className={buttonClass("primary", "md")}>
        Filter
      </button>
      <Link href="/history" className={buttonClass("ghost", "md")}>
        Clear
      </Link>
    </form>
  );
}

export function AuditTable({ rows }: { rows: AuditRow[] }) {
  return (
    <LogTable
      label="Audit log"
      minWidth="min-w-[56rem]"
      columns={[{ label: "When" }, { label: "Who" }, { label: "From" }, { label: "What" }, { label: "Farm" }, { label: "Result" }, { label: "Details" }]}
      empty="No entry matches."
      isEmpty={rows.length === 0}
    >
      {rows.map((a) => (
        <tr key={a.id} className="border-b border-line align-top last:border-0">
          <td className="px-4 py-2 whitespace-nowrap">
            <UtcTime at={a.at} />
          </td>
          <td className="px-2 py-2">
            {a.actor ?? <span className="text-muted">nobody</span>} <span className="text-xs text-muted">({a.via})</span>
          </td>
          <td className="px-2 py-2 font-mono text-xs">{a.address ?? ""}</td>
          <td className="px-2 py-2">
            {a.action} <span className="text-xs text-muted">· {auditKind(a.action)}</span>
          </td>
          <td className="px-2 py-2">
            {a.farm ? (
              <Link href={`/farms/${encodeURIComponent(a.farm)}`} className="text-accent hover:underline">
                {a.farm}
              </Link>
            ) : null}
          </td>
          <td className="px-2 py-2">
            <Badge tone={a.result === "ok" ? "ok" : a.result === "invalid" ? "warn" : "bad"}>{a.result}</Badge>
          </td>
          <td className="max-w-md px-4 py-2 text-xs break-words text-muted">
            <Detail text={a.detail} />
          </td>
        </tr>
      ))}
    </LogTable>
  );
}

/** "Newest" and "Older" along the id cursor: a full page means there may be more. */
export function AuditPaging({ filter, rows }: { filter: AuditFilter; rows: AuditRow[] }) {
  const last = rows.at(-1);
  const more = rows.length === filter.limit && last;
  if (!filter.before && !more) return null;
  return (
    <nav aria-label="Audit log pages" className="flex items-center justify-end gap-2 border-t border-line px-4 py-2">
      {filter.before ? (
        <Link href={`/history${filterQuery(filter, { withCursor: false })}`} className={buttonClass("secondary", "sm")}>
          Newest
        </Link>
      ) : null}
      {more ? (
        <Link href={`/history${filterQuery(filter, { before: last.id })}`} className={buttonClass("secondary", "sm")} rel="next">
          Older entries
        </Link>
      ) : null}
    </nav>
  );
}

function FilterLabel({ id, children }: { id: string; children: React.ReactNode }) {
  return (
    <label htmlFor={id} className="mb-1 block text-xs font-medium text-muted">
      {children}
    </label>
  );
}

function TextFilter({ id, name, label, value }: { id: string; name: string; label: string; value: string }) {
  return (
    <div>
      <FilterLabel id={id}>{label}</FilterLabel>
      <input id={id} name={name} defaultValue={value} maxLength={64} className={`${inputClass} w-36`} autoCapitalize="none" spellCheck={false} />
    </div>
  );
}

function ChoiceFilter({ id, name, label, value, choices }: { id: string; name: string; label: string; value: string | undefined; choices: readonly string[] }) {
  return (
    <div>
      <FilterLabel id={id}>{label}</FilterLabel>
      <select id={id} name={name} defaultValue={value ?? ""} className={`${inputClass} w-32`}>
        <option value="">any</option>
        {choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    </div>
  );
}
