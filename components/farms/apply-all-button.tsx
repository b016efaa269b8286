"use client";

import { useCan } from "@/components/auth/role";
import { applyAllAction } from "@/lib/actions/farms";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";

/** Re-applies every farm of the database in one transaction per table, after a confirmation. */
export function ApplyAllButton({ farms, target, disabled }: { farms: number; target: string; disabled?: boolean }) {
  if (!useCan("operate")) return null;
  return (
    <ConfirmDialog
      trigger="Apply all"
      triggerTone="secondary"
      title="Apply all farms?"
      confirm="Apply all farms"
      action={applyAllAction}
      fields={{}}
      disabled={disabled}
    >
      <p>
        natfarm's rules in <span className="font-mono">{target}</span> become exactly the database's {farms} farm{farms === 1 ? "" : "s"}: rules of farms the
        database no longer holds are removed, missing or changed ones written. Only what differs is written, atomically per table; rules that stay keep
        their counters, and nobody else's rules are touched.
      </p>
      <p className="mt-2 text-muted">If iptables refuses the change, the kernel keeps its current rules and its message is shown.</p>
    </ConfirmDialog>
  );
}
