"use client";

import { useQueryClient } from "@tanstack/react-query";
import { resetCountersAction } from "@/lib/actions/tables";
import type { ActionState } from "@/lib/actions/state";
import type { Engine } from "@/lib/kernel/engine";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";

/**
 * "Reset counters" with its confirmation: natfarm's own counters (one
 * farm's, or all of natfarm's) on this node's kernel. The dialog says what
 * keeps its counts, since an operator of a shared machine would otherwise
 * expect a `-Z` of the whole table. Shown to operators and admins only (the
 * action checks the role again).
 */
export function ResetCounters({ engine, farm, node }: { engine: Engine; farm?: string; node: string }) {
  const client = useQueryClient();
  // The tables shown are read again at once, not at the next 2 s refresh: the zeros show with the toast.
  const action = async (prev: ActionState, form: FormData) => {
    const next = await resetCountersAction(prev, form);
    await client.invalidateQueries({ queryKey: ["tables"] });
    return next;
  };
  const whose = farm ? `farm ${farm}'s` : "natfarm's";
  return (
    <ConfirmDialog trigger="Reset counters" triggerLabel={farm ? `Reset counters of farm ${farm}` : undefined} title={`Reset ${whose} counters?`} confirm="Reset counters" action={action} fields={farm ? { farm } : {}}>
      {engine === "nftables" ? (
        <p>
          The packet and byte counters of {farm ? `farm ${farm}'s backends` : "every backend"} in natfarm's table <span className="font-mono">ip natfarm</span> (the{" "}
          <span className="font-mono">backends</span> set&apos;s elements) go back to 0, in one transaction on <span className="font-mono">{node}</span>. Rules, maps and persistent clients stay as they are.
        </p>
      ) : (
        <p>
          The packet and byte counters of {farm ? `farm ${farm}'s rules (its own chain, and its rules in natfarm's shared chains)` : "every rule in natfarm's NATFARM-* chains in mangle and nat"} go back to 0, in one{" "}
          <span className="font-mono">iptables-restore</span> on <span className="font-mono">{node}</span>. No rule is added, changed or removed.
        </p>
      )}
      <p className="mt-2">
        <strong>Not reset:</strong> other software&apos;s rules, chains and tables keep their counters, and so do natfarm&apos;s jumps from the built-in chains (PREROUTING, POSTROUTING):
        zeroing a built-in chain would zero other software&apos;s rules in it too.{farm ? " Other farms keep their counts." : ""}
      </p>
      <p className="mt-2">The farms&apos; traffic graphs keep the totals they sampled before the reset (every 10 s).</p>
    </ConfirmDialog>
  );
}
