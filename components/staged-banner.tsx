import { applyStagedAction, confirmSavepointAction, discardStagedAction } from "@/lib/actions/staging";
import { can } from "@/lib/auth/roles";
import type { PendingView } from "@/lib/service/staging";
import { ActionButton } from "@/components/ui/action-button";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { SavepointCountdown } from "@/components/savepoint-countdown";
import { SessionStagingToggle } from "@/components/session-staging";
import { StagedLiveRefresh } from "@/components/staged-live-refresh";

/**
 * Under the header on every page while changes are staged: how many
 * changes are pending and what (each revision, and per farm the rules
 * Apply changes adds to and removes from the kernel as it is now, and any
 * farm whose rules were changed outside natfarm since the last apply), with
 * Apply changes, Apply with rollback
 * and Discard for operators. While an apply waits under its savepoint: the
 * seconds left and "Keep the changes".
 */
export function StagedBanner({ view, role, seconds }: { view: PendingView; role: string; seconds: number }) {
  const operate = can(role, "operate");
  if (view.savepoint) {
    return (
      <div role="status" aria-label="Changes waiting for confirmation" className="border-b border-warn/40 bg-warn-soft" data-testid="savepoint-banner">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-3 px-4 py-2 text-sm text-warn sm:px-6">
          <p>
            <strong className="font-semibold">Changes applied under a savepoint.</strong> Unless they are kept within <SavepointCountdown until={view.savepoint.until.toISOString()} />, natfarm goes back to the previous configuration by itself.
          </p>
          {operate && (
            <ActionButton action={confirmSavepointAction} fields={{}} tone="primary" size="sm" pendingText="Keeping…">
              Keep the changes
            </ActionButton>
          )}
        </div>
      </div>
    );
  }
  if (view.farms.length === 0) {
    if (!view.session || view.enabled) return null;
    return (
      <div role="region" aria-label="Staged changes" className="border-b border-accent/30 bg-surface" data-testid="session-staging-banner">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-3 px-4 py-2 text-sm sm:px-6">
          <p>
            <strong className="font-semibold">Your edits are staged</strong> (this login only): they wait for Apply changes. Other users&apos; edits are applied at once.
          </p>
          {operate && <SessionStagingToggle on />}
        </div>
      </div>
    );
  }
  const n = view.revisions.length;
  const live = view.live;
  const liveOf = new Map((live?.farms ?? []).map((f) => [f.farm, f]));
  const drifted = (live?.farms ?? []).filter((f) => f.drifted).map((f) => f.farm);
  const words = `${n} pending change${n === 1 ? "" : "s"}`;
  const authors = [...new Set(view.revisions.map((r) => r.author))];
  return (
    <div role="region" aria-label="Staged changes" className="border-b border-accent/30 bg-surface" data-testid="staged-banner">
      <div className="mx-auto max-w-7xl px-4 py-2 text-sm sm:px-6">
        <div className="flex flex-wrap items-center gap-3">
          <p>
            <strong className="font-semibold" data-testid="staged-count">
              {words}
            </strong>{" "}
            in {view.farms.length === 1 ? `farm ${view.farms[0]}` : `${view.farms.length} farms`}
            {authors.length > 0 && <> by {authors.slice(0, 3).join(", ")}{authors.length > 3 ? ` and ${authors.length - 3} more` : ""}</>}, not applied yet: the kernel keeps what was last applied.
            {!view.enabled && (view.session ? " Your edits are staged (this login only)." : " Edits of these farms applied at once are refused until the changes are applied or discarded.")}
          </p>
          {operate && (
            <div className="flex flex-wrap items-center gap-2">
              <ActionButton action={applyStagedAction} fields={{ savepoint: "no" }} tone="primary" size="sm">
                Apply changes
              </ActionButton>
              <ActionButton action={applyStagedAction} fields={{ savepoint: "yes" }} size="sm" label={`Apply with rollback (${seconds} s): back to the previous configuration unless kept`}>
                Apply with rollback ({seconds} s)
              </ActionButton>
              {!view.enabled && <SessionStagingToggle on={view.session} />}
              <ConfirmDialog trigger="Discard…" triggerSize="sm" triggerTone="ghost" title={`Discard ${words}?`} confirm="Discard" confirmTone="danger" action={discardStagedAction} fields={{}}>
                <p>The configuration goes back to what the kernel holds; the kernel is not touched. Discarded:</p>
                <ul className="mt-2 list-disc pl-5">
                  {view.diffs.map((d) => (
                    <li key={d.farm} className="break-words">
                      {d.words}
                    </li>
                  ))}
                </ul>
              </ConfirmDialog>
            </div>
          )}
        </div>
        {drifted.length > 0 && (
          <p className="mt-1 text-warn" data-testid="staged-drift">
            <strong className="font-semibold">The kernel no longer holds what was last applied</strong> for {drifted.length === 1 ? `farm ${drifted[0]}` : `farms ${drifted.join(", ")}`} (rules changed outside natfarm): Apply changes writes {drifted.length === 1 ? "its" : "their"} rules as configured, the lines below included.
          </p>
        )}
        {view.liveReading && <StagedLiveRefresh />}
        <details className="mt-1">
          <summary className="cursor-pointer text-accent">What Apply changes does</summary>
          <p className="mt-1 text-xs text-muted" data-testid="staged-diff-basis">
            {view.liveReading
              ? "Comparing with the kernel's rules now… meanwhile, compared with the configuration last applied."
              : live && !live.error
              ? `Compared with the kernel's rules now${live.omitted.length ? ` (${live.omitted.length} more farm${live.omitted.length === 1 ? "" : "s"}: ${live.omitted.slice(0, 5).join(", ")}${live.omitted.length > 5 ? ", …" : ""} compared with the configuration last applied)` : ""}.`
              : live?.error
                ? `The kernel could not be read (${live.error}): compared with the configuration last applied.`
                : "Compared with the configuration last applied."}
          </p>
          <ul className="mt-1 space-y-2" aria-label="Pending changes by farm">
            {view.diffs.map((d) => {
              const l = liveOf.get(d.farm);
              const lines = l ? [...l.remove.map((line) => ({ op: "-" as const, line })), ...l.add.map((line) => ({ op: "+" as const, line }))] : d.rules.filter((x) => x.op !== " ");
              return (
                <li key={d.farm}>
                  <p className="break-words">{d.words}</p>
                  <div role="region" aria-label={`Rules of farm ${d.farm} that Apply changes adds and removes`} tabIndex={0} className="mt-1 overflow-x-auto rounded border border-line bg-bg">
                    <pre className="min-w-max p-2 font-mono text-[11px] leading-5" data-testid={`staged-rules-${d.farm}`} data-basis={l ? "kernel" : "applied"}>
                      {lines.length === 0 ? <div className="text-muted">no rule changes: the kernel holds these rules already</div> : lines.map((x, i) => (
                        <div key={i} className={x.op === "+" ? "bg-ok/15" : "bg-bad/15"}>
                          {x.op === "+" ? "+ " : "− "}
                          {x.line}
                        </div>
                      ))}
                    </pre>
                  </div>
                </li>
              );
            })}
          </ul>
          <p className="mt-1 text-xs text-muted">Pending: {view.revisions.map((r) => `#${r.id} ${r.summary} (${r.author})`).join("; ")}</p>
        </details>
      </div>
    </div>
  );
}
