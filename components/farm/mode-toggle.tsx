"use client";

import { useCan } from "@/components/auth/role";
import { setModeAction } from "@/lib/actions/farms";
import type { DiffLine } from "@/lib/console/rule-diff";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";

const LABEL = { nat: "NAT", dnat: "DNAT" } as const;

/**
 * NAT ↔ DNAT. The confirmation shows the farm's rules before and after, line
 * by line: switching to NAT adds the SNAT rules, switching to DNAT drops them.
 */
export function ModeToggle({ farm, mode, otherMode, diff, disabled }: { farm: string; mode: "nat" | "dnat"; otherMode: "nat" | "dnat"; diff: DiffLine[]; disabled?: boolean }) {
  // Rules only (not the "*table" lines): the same count the toast gives once the switch is applied.
  const added = diff.filter((d) => d.kind === "added" && d.text.startsWith("-A ")).length;
  const removed = diff.filter((d) => d.kind === "removed" && d.text.startsWith("-A ")).length;
  const mayOperate = useCan("operate");
  return (
    <div className="flex flex-wrap items-center gap-3">
      {/* Plain text, not a two-part pill: only the button beside it switches, after its confirmation. */}
      <p className="text-sm" data-testid="current-mode">
        <span className="text-muted">Now: </span>
        <strong className="font-semibold">{LABEL[mode]}</strong>
      </p>
      {mayOperate && (
      <ConfirmDialog
        trigger={`Switch to ${LABEL[otherMode]}`}
        title={`Switch farm ${farm} to ${LABEL[otherMode]}?`}
        confirm={`Switch to ${LABEL[otherMode]}`}
        action={setModeAction}
        fields={{ farm, mode: otherMode }}
        disabled={disabled}
      >
        <p className="mb-3">
          {otherMode === "nat"
            ? "In NAT mode the load balancer also rewrites the source to the VIP: backends see the VIP and answer it, whatever their routes."
            : "In DNAT mode only the destination is rewritten: backends see the client's address and must route replies back through the load balancer."}{" "}
          <strong>
            {added} rule{added === 1 ? "" : "s"} appear, {removed} disappear.
          </strong>
        </p>
        <pre tabIndex={0} className="overflow-x-auto rounded-md border border-line bg-code p-3 font-mono text-xs leading-5" aria-label="Rule changes">
          {diff.map((d, i) => (
            <div
              key={i}
              className={d.kind === "added" ? "bg-ok-soft text-ok" : d.kind === "removed" ? "bg-bad-soft text-bad line-through decoration-1" : "text-muted"}
            >
              <span aria-hidden="true">{d.kind === "added" ? "+ " : d.kind === "removed" ? "- " : "  "}</span>
              <span className="sr-only">{d.kind === "added" ? "appears: " : d.kind === "removed" ? "disappears: " : ""}</span>
              {d.text}
            </div>
          ))}
        </pre>
      </ConfirmDialog>
      )}
    </div>
  );
}
