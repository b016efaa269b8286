"use client";

import { useQuery, useQueryClient, type QueryState } from "@tanstack/react-query";
import { useEffect } from "react";
import type { KernelReach } from "@/lib/service/kernel-reach";

/**
 * "natfarm agent unavailable" under the header while the console cannot
 * reach its agent: changes are refused (nothing is saved) and live data is
 * missing until it is back. It polls the cheap /api/agent, faster while the
 * agent is down, so the banner goes by itself when the agent returns; the
 * pages' own live polling (tables, farm statistics, drift) that finds the
 * agent gone or back makes it ask at once.
 */
const UP_POLL_MS = 10_000;
const DOWN_POLL_MS = 2_000;

async function fetchReach(): Promise<KernelReach> {
  const res = await fetch("/api/agent", { cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** What a live query says about the agent: down, up, or nothing (it does not reach the kernel). */
function agentSignal(key: readonly unknown[], state: QueryState): boolean | null {
  if (state.status === "error") return (state.error as { agentUnavailable?: boolean } | null)?.agentUnavailable === true ? true : null;
  if (state.status !== "success") return null;
  const data = state.data as { agentUnavailable?: unknown } | null | undefined;
  if (data && typeof data === "object" && "agentUnavailable" in data) return data.agentUnavailable === true;
  // A tables read that came back went through the agent.
  return key[0] === "tables" ? false : null;
}

export function AgentBanner({ initial }: { initial: KernelReach }) {
  const client = useQueryClient();
  const watched = initial.state === "up" || initial.state === "down";
  const q = useQuery({
    queryKey: ["agent"],
    queryFn: fetchReach,
    initialData: initial,
    enabled: watched,
    refetchInterval: (query) => (query.state.data?.state === "down" ? DOWN_POLL_MS : UP_POLL_MS),
    retry: false,
  });

  useEffect(() => {
    if (!watched) return;
    return client.getQueryCache().subscribe((event) => {
      if (event.type !== "updated" || event.query.queryKey[0] === "agent") return;
      const seen = agentSignal(event.query.queryKey, event.query.state);
      const shown = client.getQueryData<KernelReach>(["agent"])?.state === "down";
      if (seen !== null && seen !== shown) void client.invalidateQueries({ queryKey: ["agent"] });
    });
  }, [client, watched]);

  const reach = q.data;
  if (reach?.state !== "down") return null;
  return (
    <div role="alert" data-testid="agent-unavailable" className="border-b border-bad/40 bg-bad-soft">
      <div className="mx-auto max-w-7xl px-4 py-2 text-sm sm:px-6">
        <p className="text-bad">
          <strong className="font-semibold">natfarm agent unavailable.</strong> Changes are refused and nothing is saved; live tables, statistics and drift are not shown. This page recovers by itself when the agent is back.
        </p>
        <p className="mt-0.5 font-mono text-xs break-all text-muted">{reach.message}</p>
      </div>
    </div>
  );
}
