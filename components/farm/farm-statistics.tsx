"use client";

import { Badge } from "@/components/ui/badge";
import { Sparkline } from "./sparkline";
import { SAMPLES, useFarmLive } from "./farm-live";
import { UtcTime } from "@/components/ui/log-table";
import { ScrollRegion } from "@/components/ui/scroll-region";

/**
 * Connections as conntrack counts them, per farm and per backend (a
 * backend's connections carry its mark), live from the page's 2 s feed, with
 * the last two minutes as sparklines.
 */
export function FarmStatistics({ farm, backends }: { farm: string; backends: { mark: number; markHex: string; ip: string; port: number | null }[] }) {
  const { live, samples, error } = useFarmLive();
  if (live?.statsNote || (!live && error)) {
    return (
      <p role="status" className="px-4 py-6 text-sm text-muted">
        {live?.statsNote ? (live.statsNote === "statistics need a target" ? "Statistics need a target: this console applies nothing, so there are no connections to count." : live.statsNote) : `Live data could not be read: ${error}`}
      </p>
    );
  }
  const totals = live?.stats?.totals;
  const byMark = new Map((live?.backends ?? []).map((b) => [b.mark, b]));
  const est = samples.map((s) => s.established);
  const pend = samples.map((s) => s.pending);
  return (
    <div>
      <div className="grid gap-4 border-b border-line p-4 sm:grid-cols-[auto_auto_1fr] sm:items-center">
        <Figure label="Established" value={totals?.established} tone="text-accent" testId="farm-established" />
        <Figure label="Pending" value={totals?.pending} tone="text-warn" testId="farm-pending" />
        <div className="flex flex-col gap-1 sm:items-end">
          <Sparkline
            width={240}
            height={40}
            slots={SAMPLES}
            series={[
              { values: est, className: "text-accent" },
              { values: pend, className: "text-warn", dashed: true },
            ]}
          />
          <p className="text-xs text-muted">
            <span aria-hidden="true" className="mr-1 inline-block h-0.5 w-3 bg-accent align-middle" />
            established <span aria-hidden="true" className="mr-1 ml-3 inline-block h-0.5 w-3 border-t border-dashed border-warn align-middle" />
            pending · last {Math.round((samples.length * 2) / 60) || "<1"} min
          </p>
        </div>
      </div>
      <ScrollRegion label={`Connections by backend of ${farm}, table`}>
        <table className="w-full min-w-[40rem] text-sm" aria-label={`Connections by backend of ${farm}`}>
          <thead>
            <tr className="border-b border-line text-left text-xs font-medium uppercase tracking-wide text-muted">
              <th scope="col" className="px-4 py-2">Backend</th>
              <th scope="col" className="px-2 py-2 text-right">Established</th>
              <th scope="col" className="px-2 py-2 text-right">Pending</th>
              <th scope="col" className="px-2 py-2 text-right">Closing</th>
              <th scope="col" className="px-4 py-2">Last 2 minutes</th>
            </tr>
          </thead>
          <tbody>
            {backends.length === 0 && (
              <tr>
                <td colSpan={5} className="px-4 py-6 text-center text-muted">
                  No backends.
                </td>
              </tr>
            )}
            {backends.map((b) => {
              const s = byMark.get(b.mark)?.stats;
              return (
                <tr key={b.mark} className="border-b border-line last:border-0">
                  <td className="px-4 py-2 font-mono text-xs">
                    {b.ip}
                    {b.port ? `:${b.port}` : ""} <span className="text-muted">({b.markHex})</span>
                  </td>
                  <td className="px-2 py-2 text-right tabular-nums">{s ? s.established : "–"}</td>
                  <td className="px-2 py-2 text-right tabular-nums">{s ? s.pending : "–"}</td>
                  <td className="px-2 py-2 text-right tabular-nums text-muted">{s ? s.closing : "–"}</td>
                  <td className="px-4 py-1.5">
                    <Sparkline
                      slots={SAMPLES}
                      series={[
                        { values: samples.map((x) => x.byMark[b.mark]?.[0] ?? 0), className: "text-accent" },
                        { values: samples.map((x) => x.byMark[b.mark]?.[1] ?? 0), className: "text-warn", dashed: true },
                      ]}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </ScrollRegion>
      {live?.stats && (
        <p className="px-4 py-2 text-xs text-muted" aria-live="off">
          From conntrack, read <UtcTime at={live.stats.at} /> · every 2 s
        </p>
      )}
      {!live && !error && <p className="px-4 py-2 text-xs text-muted">Reading conntrack…</p>}
    </div>
  );
}

function Figure({ label, value, tone, testId }: { label: string; value: number | undefined; tone: string; testId: string }) {
  return (
    <div className="min-w-[8rem]">
      <p className="text-xs font-medium uppercase tracking-wide text-muted">{label}</p>
      <p className={`text-2xl font-semibold tabular-nums ${tone}`} data-testid={testId} aria-label={`${label} connections`}>
        {value ?? "–"}
      </p>
    </div>
  );
}

export function HealthEventsPanel({ farm, hasCheck }: { farm: string; hasCheck: boolean }) {
  const { live } = useFarmLive();
  const events = live?.events ?? [];
  return (
    <div>
      {events.length === 0 ? (
        <p className="px-4 py-6 text-sm text-muted">
          {live ? (hasCheck ? "No state change yet: every backend has kept its state." : "No health check on this farm: enable one in Settings.") : "Loading…"}
        </p>
      ) : (
        <ScrollRegion label={`Health events of ${farm}, list`} className="max-h-80 overflow-y-auto">
          <table className="w-full text-sm" aria-label={`Health events of ${farm}`}>
            <thead className="sticky top-0 bg-surface">
              <tr className="border-b border-line text-left text-xs font-medium uppercase tracking-wide text-muted">
                <th scope="col" className="px-4 py-2">When</th>
                <th scope="col" className="px-2 py-2">Backend</th>
                <th scope="col" className="px-2 py-2">Change</th>
                <th scope="col" className="px-4 py-2">Detail</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id} className="border-b border-line last:border-0">
                  <td className="px-4 py-2 whitespace-nowrap">
                    <UtcTime at={e.at} />
                  </td>
                  <td className="px-2 py-2 font-mono text-xs">{e.backend}</td>
                  <td className="px-2 py-2 whitespace-nowrap">
                    <StateBadge state={e.from} /> <span aria-label="to">→</span> <StateBadge state={e.to} />
                  </td>
                  <td className="px-4 py-2 font-mono text-xs break-all">{e.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}
    </div>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <Badge tone={state === "up" ? "ok" : state === "down" ? "bad" : "warn"}>{state}</Badge>;
}
