import type { ReactNode } from "react";
import { ScrollRegion } from "./scroll-region";

/**
 * The console's log tables (apply log, audit log, health events): a labelled,
 * horizontally scrollable table with a header row, and a sentence in place of
 * rows while there are none.
 */
export interface LogColumn {
  label: string;
  /** The header cell's padding and alignment (first and last columns pad wider). */
  className?: string;
}

export function LogTable({ label, minWidth, columns, empty, isEmpty, children }: { label: string; minWidth: string; columns: LogColumn[]; empty: ReactNode; isEmpty: boolean; children: ReactNode }) {
  return (
    <ScrollRegion label={label}>
      <table className={`w-full ${minWidth} text-sm`} aria-label={label}>
        <thead>
          <tr className="border-b border-line text-left text-xs uppercase tracking-wide text-muted">
            {columns.map((c, i) => (
              <th key={c.label} scope="col" className={c.className ?? (i === 0 || i === columns.length - 1 ? "px-4 py-2" : "px-2 py-2")}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {isEmpty && (
            <tr>
              <td colSpan={columns.length} className="px-4 py-10 text-center text-muted">
                {empty}
              </td>
            </tr>
          )}
          {children}
        </tbody>
      </table>
    </ScrollRegion>
  );
}

/** A moment as the whole console writes it: `2026-12-01 10:00:00 UTC` (one format on every page, the same on server and browser). */
export function utcText(at: Date | string): string {
  const iso = typeof at === "string" ? at : at.toISOString();
  return `${iso.replace("T", " ").slice(0, 19)} UTC`;
}

/** utcText in a <time> element, with the exact time for machines. */
export function UtcTime({ at }: { at: Date | string }) {
  const iso = typeof at === "string" ? at : at.toISOString();
  return <time dateTime={iso}>{utcText(iso)}</time>;
}
