"use client";

import { useQuery } from "@tanstack/react-query";
import type { ActionState } from "@/lib/actions/state";
import type { FarmRuleDrift } from "@/lib/applier/drift";
import { farmStatus, type BackendCounts } from "@/lib/console/farm-status";
import type { FarmRow } from "@/lib/service/farm-rows";
import { LiveErrorNote } from "@/components/live-error-note";
import { StatusBadge } from "@/components/ui/status-badge";
import { FarmAlerts } from "./farm-alerts";

/**
 * The farm's drift, read apart from the page (GET /api/farms/<name>/drift,
 * every 10 s and whenever the farm's row changes): the page answers from the
 * database alone, and an action's re-render of it does not wait for a read of
 * the kernel either. The status badge and the drift alert follow it.
 */
interface DriftAnswer {
  drift: FarmRuleDrift | null;
  liveError: string | null;
  agentUnavailable: boolean;
}

const DRIFT_POLL_MS = 10_000;

function useFarmDrift(farm: string, version: string) {
  return useQuery({
    // A new version (an apply, a health change) asks again at once.
    queryKey: ["farm-drift", farm, version],
    queryFn: async (): Promise<DriftAnswer> => {
      const res = await fetch(`/api/farms/${encodeURIComponent(farm)}/drift`, { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
      return body as DriftAnswer;
    },
    refetchInterval: DRIFT_POLL_MS,
    placeholderData: (prev) => prev,
  });
}

type StatusRow = Pick<FarmRow, "status" | "applyState">;

export function LiveStatusBadge({ farm, version, row, counts }: { farm: string; version: string; row: StatusRow; counts: BackendCounts }) {
  const q = useFarmDrift(farm, version);
  return <StatusBadge status={farmStatus(row, q.data?.drift ?? null, counts)} />;
}

export function FarmDriftAlerts({
  farm,
  version,
  row,
  canApply,
  mayApply,
  reapply,
}: {
  farm: string;
  version: string;
  row: Pick<FarmRow, "applyState" | "applyError" | "appliedAt">;
  canApply: boolean;
  mayApply: boolean;
  reapply: (prev: ActionState, form: FormData) => Promise<ActionState>;
}) {
  const q = useFarmDrift(farm, version);
  const d = q.data;
  return (
    <>
      {d?.liveError && <LiveErrorNote message={d.liveError} />}
      <FarmAlerts farm={farm} row={row} drift={d?.drift ?? null} canApply={canApply} mayApply={mayApply} reapply={reapply} />
    </>
  );
}
