"use client";

import { useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { createContext, startTransition, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import type { FarmLive } from "@/lib/console/live-types";

/**
 * The farm page's live feed: GET /api/farms/<name>/live every 2 s, shared by
 * every live part of the page through one React Query. The last ~60 samples
 * of the connection counts stay here for the sparklines (two minutes). When
 * the farm's row changed on the server (the health checker took a backend
 * out or brought one back, someone else edited it), the page re-renders from
 * the server without a reload.
 */
export const LIVE_REFRESH_MS = 2000;
export const SAMPLES = 60;

export interface Sample {
  t: number;
  established: number;
  pending: number;
  byMark: Record<number, [established: number, pending: number]>;
}

interface LiveContext {
  live: FarmLive | null;
  error: string | null;
  samples: Sample[];
}

const Ctx = createContext<LiveContext>({ live: null, error: null, samples: [] });

export function useFarmLive(): LiveContext {
  return useContext(Ctx);
}

async function fetchLive(farm: string): Promise<FarmLive> {
  const res = await fetch(`/api/farms/${encodeURIComponent(farm)}/live`, { cache: "no-store" });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
  return body as FarmLive;
}

export function FarmLiveProvider({ farm, version, children }: { farm: string; version: string; children: ReactNode }) {
  const router = useRouter();
  const q = useQuery({ queryKey: ["farm-live", farm], queryFn: () => fetchLive(farm), refetchInterval: LIVE_REFRESH_MS });
  const [samples, setSamples] = useState<Sample[]>([]);
  const data = q.data;

  useEffect(() => {
    if (!data?.stats) return;
    const byMark: Sample["byMark"] = {};
    for (const b of data.backends) if (b.stats) byMark[b.mark] = [b.stats.established, b.stats.pending];
    const t = Date.parse(data.stats.at);
    setSamples((s) => (s.length && s[s.length - 1]!.t === t ? s : [...s, { t, established: data.stats!.totals.established, pending: data.stats!.totals.pending, byMark }].slice(-SAMPLES)));
  }, [data]);

  // One refresh per new version: the server's render then carries it.
  const asked = useRef<string | null>(null);
  useEffect(() => {
    if (!data || data.version === version || asked.current === data.version) return;
    asked.current = data.version;
    startTransition(() => router.refresh());
  }, [data, version, router]);

  return <Ctx.Provider value={{ live: data ?? null, error: q.error ? (q.error as Error).message : null, samples }}>{children}</Ctx.Provider>;
}
