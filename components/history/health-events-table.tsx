"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import type { LiveHealthEvent } from "@/lib/console/live-types";
import { Badge } from "@/components/ui/badge";
import { LogTable, UtcTime } from "@/components/ui/log-table";

/** The health checker's state changes, newest first, refreshed every 2 s. */
async function fetchEvents(): Promise<{ events: LiveHealthEvent[] }> {
  const res = await fetch("/api/health-events?limit=200", { cache: "no-store" });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
  return body;
}

function tone(state: string) {
  return state === "up" ? "ok" : state === "down" ? "bad" : "warn";
}

export function HealthEventsTable({ initial }: { initial: LiveHealthEvent[] }) {
  const q = useQuery({ queryKey: ["health-events"], queryFn: fetchEvents, initialData: { events: initial }, refetchInterval: 2000 });
  const events = q.data.events;
  return (
    <div>
      {q.error && (
        <p role="alert" className="border-b border-line px-4 py-2 text-sm text-bad">
          Health events could not be refreshed: {(q.error as Error).message}
        </p>
      )}
      <LogTable
        label="Health events"
        minWidth="min-w-[48rem]"
        columns={[{ label: "When" }, { label: "Farm" }, { label: "Backend" }, { label: "Change" }, { label: "Detail" }]}
        empty="No health event yet: the health checker records here every backend it takes out or brings back."
        isEmpty={events.length === 0}
      >
        {events.map((e) => (
          <tr key={e.id} className="border-b border-line align-top last:border-0">
            <td className="px-4 py-2 whitespace-nowrap">
              <UtcTime at={e.at} />
            </td>
            <td className="px-2 py-2">
              <Link href={`/farms/${encodeURIComponent(e.farm)}`} className="text-accent hover:underline">
                {e.farm}
              </Link>
            </td>
            <td className="px-2 py-2 font-mono text-xs">{e.backend}</td>
            <td className="px-2 py-2 whitespace-nowrap">
              <Badge tone={tone(e.from)}>{e.from}</Badge> <span aria-label="to">→</span> <Badge tone={tone(e.to)}>{e.to}</Badge>
            </td>
            <td className="px-4 py-2 font-mono text-xs break-all">{e.detail}</td>
          </tr>
        ))}
      </LogTable>
    </div>
  );
}
