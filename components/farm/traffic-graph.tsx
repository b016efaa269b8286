"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { FarmTraffic } from "@/lib/service/traffic-sampler";
import { buttonClass } from "@/components/ui/button";
import { utcText } from "@/components/ui/log-table";

/**
 * The farm's traffic with history: new connections per second and the bytes
 * natfarm's translation counters see (each new connection's first packet),
 * from the health checker's samples (every 10 s for an hour, every minute for
 * a day), so it survives rewrites and counter resets. Refreshed every 10 s.
 */
const RANGES = { "1h": { ms: 3600_000, label: "last hour" }, "24h": { ms: 24 * 3600_000, label: "last 24 hours" } } as const;
type Range = keyof typeof RANGES;
const W = 600;
const H = 96;

async function fetchTraffic(farm: string, range: Range): Promise<FarmTraffic> {
  const res = await fetch(`/api/farms/${encodeURIComponent(farm)}/traffic?range=${range}`, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
  return body as FarmTraffic;
}

function rate(n: number, unit: string): string {
  const v = n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
  return `${v} ${unit}`;
}
function bytesRate(n: number): string {
  if (n >= 1e6) return rate(n / 1e6, "MB/s");
  if (n >= 1e3) return rate(n / 1e3, "kB/s");
  return rate(n, "B/s");
}

export function TrafficGraph({ farm }: { farm: string }) {
  const [range, setRange] = useState<Range>("1h");
  const q = useQuery({ queryKey: ["traffic", farm, range], queryFn: () => fetchTraffic(farm, range), refetchInterval: 10_000, placeholderData: (p) => p });
  const data = q.data;
  const end = Date.now();
  const start = end - RANGES[range].ms;
  const points = (data?.points ?? []).filter((p) => Date.parse(p.at) > start);
  const latest = points.length && end - Date.parse(points[points.length - 1]!.at) < (data?.step ?? 10) * 2000 ? points[points.length - 1]! : null;
  const peak = (k: "connectionsPerS" | "bytesPerS") => points.reduce((m, p) => Math.max(m, p[k]), 0);
  return (
    <div className="space-y-3 p-4" data-testid="traffic-graph">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <p className="text-xs text-muted">
          From natfarm&apos;s own counters, sampled by the health checker every {range === "1h" ? "10 s" : "minute"}
          {data?.lastSample ? ` · last sample ${utcText(data.lastSample)}` : ""}
        </p>
        {/* A choice of view, not an action: radio buttons (a viewer's page carries no button that does anything). */}
        <fieldset className="flex gap-1">
          <legend className="sr-only">Traffic graph range</legend>
          {(Object.keys(RANGES) as Range[]).map((r) => (
            <label key={r} className={`${buttonClass(range === r ? "primary" : "secondary", "sm")} cursor-pointer has-[:focus-visible]:outline-2`}>
              <input type="radio" name={`traffic-range-${farm}`} value={r} checked={range === r} onChange={() => setRange(r)} className="sr-only" />
              {r === "1h" ? "1 hour" : "24 hours"}
            </label>
          ))}
        </fieldset>
      </div>
      {q.error && !data ? (
        <p role="status" className="text-sm text-muted">
          The traffic history could not be read: {(q.error as Error).message}
        </p>
      ) : points.length === 0 ? (
        <p role="status" className="text-sm text-muted" data-testid="traffic-empty">
          {data ? `No new connection counted in the ${RANGES[range].label}.` : "Reading the traffic history…"}
        </p>
      ) : (
        <div className="grid gap-4 md:grid-cols-2">
          <Chart
            title="New connections per second"
            testId="traffic-connections"
            points={points}
            value={(p) => p.connectionsPerS}
            format={(v) => rate(v, "/s")}
            start={start}
            end={end}
            latest={latest?.connectionsPerS ?? 0}
            peak={peak("connectionsPerS")}
            range={RANGES[range].label}
            className="text-accent"
          />
          <Chart
            title="Bytes per second (first packets)"
            testId="traffic-bytes"
            points={points}
            value={(p) => p.bytesPerS}
            format={bytesRate}
            start={start}
            end={end}
            latest={latest?.bytesPerS ?? 0}
            peak={peak("bytesPerS")}
            range={RANGES[range].label}
            className="text-ok"
          />
        </div>
      )}
    </div>
  );
}

type Point = FarmTraffic["points"][number];

/** A step line: each sample's rate held over the time it covers; no sample is no traffic. */
function Chart({
  title,
  testId,
  points,
  value,
  format,
  start,
  end,
  latest,
  peak,
  range,
  className,
}: {
  title: string;
  testId: string;
  points: Point[];
  value: (p: Point) => number;
  format: (v: number) => string;
  start: number;
  end: number;
  latest: number;
  peak: number;
  range: string;
  className: string;
}) {
  const max = peak > 0 ? peak : 1;
  const x = (t: number) => ((Math.min(end, Math.max(start, t)) - start) / (end - start)) * W;
  const y = (v: number) => H - 2 - (v / max) * (H - 6);
  let d = `M0,${y(0)}`;
  for (const p of points) {
    const a = x(Date.parse(p.from));
    const b = x(Date.parse(p.at));
    d += ` L${a.toFixed(1)},${y(0).toFixed(1)} L${a.toFixed(1)},${y(value(p)).toFixed(1)} L${b.toFixed(1)},${y(value(p)).toFixed(1)} L${b.toFixed(1)},${y(0).toFixed(1)}`;
  }
  d += ` L${W},${y(0)}`;
  const summary = `${title}, ${range}: now ${format(latest)}, peak ${format(peak)}.`;
  return (
    <figure className="min-w-0" data-testid={testId} data-peak={peak} data-latest={latest}>
      <figcaption className="mb-1 flex flex-wrap items-baseline justify-between gap-x-3 text-xs">
        <span className="font-medium">{title}</span>
        <span className="tabular-nums text-muted">
          now {format(latest)} · peak {format(peak)}
        </span>
      </figcaption>
      <svg role="img" aria-label={summary} viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className="block h-24 w-full rounded border border-line bg-surface-2/40">
        <path d={d} fill="none" stroke="currentColor" strokeWidth={1.5} vectorEffect="non-scaling-stroke" strokeLinejoin="round" className={className} />
      </svg>
      <div className="mt-0.5 flex justify-between text-[11px] text-muted" aria-hidden="true">
        <span>{range === "last hour" ? "−60 min" : "−24 h"}</span>
        <span>now</span>
      </div>
    </figure>
  );
}
