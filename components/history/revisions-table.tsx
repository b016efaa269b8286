import Link from "next/link";
import type { RevisionSummary } from "@/lib/service/config-history";
import { Badge } from "@/components/ui/badge";
import { LogTable, UtcTime } from "@/components/ui/log-table";

/** The configuration history: every revision with who, how, when and what; each links to its page. */
export function RevisionsTable({ revisions }: { revisions: RevisionSummary[] }) {
  return (
    <LogTable
      label="Configuration revisions"
      minWidth="min-w-[48rem]"
      columns={[{ label: "Revision" }, { label: "When" }, { label: "Author" }, { label: "Change" }, { label: "Compare" }]}
      empty="No revision yet: the history starts with the next change."
      isEmpty={revisions.length === 0}
    >
      {revisions.map((r, i) => (
        <tr key={r.id} className="border-b border-line align-top last:border-0" data-testid="revision-row">
          <td className="px-4 py-2 whitespace-nowrap">
            <Link href={`/history/revisions/${r.id}`} className="font-mono text-accent hover:underline">
              #{r.id}
            </Link>
          </td>
          <td className="px-2 py-2 whitespace-nowrap">
            <UtcTime at={r.at} />
          </td>
          <td className="px-2 py-2 whitespace-nowrap">
            {r.author} <Badge tone="neutral">{r.via}</Badge>
          </td>
          <td className="px-2 py-2 break-words">{r.summary}</td>
          <td className="px-4 py-2 whitespace-nowrap">
            {i < revisions.length - 1 ? (
              <Link href={`/history/compare?from=${revisions[i + 1]!.id}&to=${r.id}`} className="text-accent hover:underline" aria-label={`Compare #${r.id} with #${revisions[i + 1]!.id}`}>
                with #{revisions[i + 1]!.id}
              </Link>
            ) : null}
            {i < revisions.length - 1 ? " · " : null}
            <Link href={`/history/compare?from=${r.id}`} className="text-accent hover:underline" aria-label={`Compare #${r.id} with now`}>
              with now
            </Link>
          </td>
        </tr>
      ))}
    </LogTable>
  );
}
