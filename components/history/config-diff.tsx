import type { DiffLine, FarmDiff } from "@/lib/service/config-diff";
import { ScrollRegion } from "@/components/ui/scroll-region";
import { Badge } from "@/components/ui/badge";

/**
 * A comparison of two configurations, farm by farm: what changed in words,
 * then the farm's file-format JSON and its rendered rules as line diffs
 * (+ added, − removed), each in its own keyboard-reachable scroll region.
 */
function Lines({ lines, label, changedOnly = false }: { lines: DiffLine[]; label: string; changedOnly?: boolean }) {
  const shown = changedOnly ? lines.filter((l) => l.op !== " " || l.line.startsWith("*")) : lines;
  if (shown.length === 0) return <p className="px-1 py-1 text-xs text-muted">No difference.</p>;
  return (
    <ScrollRegion label={label} className="rounded border border-line bg-bg">
      <pre className="min-w-max p-2 font-mono text-[11px] leading-5">
        {shown.map((l, i) => (
          <div key={i} data-op={l.op === " " ? "same" : l.op === "+" ? "added" : "removed"} className={l.op === "+" ? "bg-ok/15 text-fg" : l.op === "-" ? "bg-bad/15 text-fg" : "text-muted"}>
            <span aria-hidden="true" className="inline-block w-4 select-none">
              {l.op === " " ? " " : l.op === "+" ? "+" : "−"}
            </span>
            <span className="sr-only">{l.op === "+" ? "added: " : l.op === "-" ? "removed: " : ""}</span>
            {l.line}
          </div>
        ))}
      </pre>
    </ScrollRegion>
  );
}

export function ConfigDiff({ diffs, empty = "No difference: the two configurations are the same." }: { diffs: FarmDiff[]; empty?: string }) {
  if (diffs.length === 0) return <p className="px-4 py-6 text-sm text-muted">{empty}</p>;
  return (
    <ul className="divide-y divide-line" aria-label="Farms that differ">
      {diffs.map((d) => (
        <li key={d.farm} className="px-4 py-3" data-testid={`diff-${d.farm}`}>
          <p className="flex flex-wrap items-center gap-2 text-sm">
            <Badge tone={d.kind === "created" ? "ok" : d.kind === "deleted" ? "bad" : "info"}>{d.kind}</Badge>
            <span className="break-words">{d.words}</span>
          </p>
          <div className="mt-2 grid gap-3 lg:grid-cols-2">
            <div className="min-w-0">
              <h3 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Farm {d.farm}</h3>
              <Lines lines={d.json} label={`Farm ${d.farm}: its settings, before and after`} />
            </div>
            <div className="min-w-0">
              <h3 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Rules of {d.farm} (changed lines)</h3>
              <Lines lines={d.rules} label={`Farm ${d.farm}: its rules, lines added and removed`} changedOnly />
            </div>
          </div>
        </li>
      ))}
    </ul>
  );
}
