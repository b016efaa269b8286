import type { ActionState } from "@/lib/actions/state";
import type { FarmRuleDrift as FarmDrift } from "@/lib/applier/drift";
import type { FarmRow } from "@/lib/service/farm-rows";
import { ActionButton } from "@/components/ui/action-button";
import { Badge } from "@/components/ui/badge";

/**
 * What the operator must act on, loudest first: a failed apply (the kernel
 * kept its previous rules), changes not yet applied, live rules that differ.
 */
export function FarmAlerts({
  farm,
  row,
  drift,
  canApply,
  mayApply = true,
  reapply,
}: {
  farm: string;
  row: Pick<FarmRow, "applyState" | "applyError" | "appliedAt">;
  drift: FarmDrift | null;
  canApply: boolean;
  /** The signed-in role may re-apply (operator or admin). */
  mayApply?: boolean;
  reapply: (prev: ActionState, form: FormData) => Promise<ActionState>;
}) {
  const button = canApply && mayApply && (
    <ActionButton action={reapply} fields={{ farm }} tone="primary" size="sm">
      Re-apply
    </ActionButton>
  );
  const alerts = [];
  if (row.applyState === "failed") {
    alerts.push(
      <div key="failed" role="alert" data-testid="apply-failed" className="rounded-lg border border-bad/40 bg-bad-soft p-4">
        <div className="flex flex-wrap items-start justify-between gap-3">
          <div className="min-w-0">
            <p className="font-semibold text-bad">Apply failed: the kernel does not hold this farm's current rules</p>
            <p className="mt-1 text-sm">The change is saved; iptables refused it and kept the previous rules.</p>
          </div>
          {button}
        </div>
        {row.applyError && <pre className="mt-3 overflow-x-auto rounded-md bg-surface p-3 font-mono text-xs whitespace-pre-wrap text-bad">{row.applyError}</pre>}
      </div>,
    );
  } else if (row.applyState === "pending") {
    alerts.push(
      <div key="pending" role="status" className="flex flex-wrap items-center justify-between gap-3 rounded-lg border border-warn/40 bg-warn-soft p-4">
        <p className="text-sm text-warn">
          <strong className="font-semibold">Changes pending.</strong>{" "}
          {canApply ? "The database holds changes the kernel does not have yet." : "Applying is disabled on this console: the rules below are what would be written."}
        </p>
        {button}
      </div>,
    );
  }
  if (drift && !drift.inSync) {
    alerts.push(
      <div key="drift" role="status" data-testid="drift" className="rounded-lg border border-info/40 bg-info-soft p-4">
        <div className="flex flex-wrap items-start justify-between gap-3">
          <p className="text-sm text-info">
            <Badge tone="info">drift</Badge> <strong className="font-semibold">The live rules differ from what natfarm wrote.</strong> Someone changed them, or an apply did not finish.
          </p>
          {row.applyState === "applied" && button}
        </div>
        <ul className="mt-3 space-y-1 font-mono text-xs" aria-label="Differences">
          {drift.missing.map((l, i) => (
            <li key={`m${i}`} className="break-all text-bad">
              <span className="sr-only">missing: </span>
              <span aria-hidden="true">− </span>
              {l}
            </li>
          ))}
          {drift.unexpected.map((l, i) => (
            <li key={`u${i}`} className="break-all text-warn">
              <span className="sr-only">unexpected: </span>
              <span aria-hidden="true">+ </span>
              {l}
            </li>
          ))}
        </ul>
      </div>,
    );
  }
  return alerts.length ? <div className="mb-5 space-y-3">{alerts}</div> : null;
}
