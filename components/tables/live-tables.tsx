"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useMemo, useState } from "react";
import type { TablesChain, TablesRule } from "@/lib/applier/tables";
import type { TablesView } from "@/lib/console/tables-view";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { inputClass } from "@/components/ui/field";
import { utcText } from "@/components/ui/log-table";
import { ScrollRegion } from "@/components/ui/scroll-region";

/**
 * mangle and nat as the kernel holds them, refreshed every 2 s. natfarm's
 * rules link to their farm; everyone else's are marked foreign and left as
 * they are. With thousands of farms, a farm filter keeps the page light.
 */
const REFRESH_MS = 2000;

/** The server filters (farm, scope) and caps the rules: the whole snapshot is megabytes at 5,000 farms. */
async function fetchTables(farm: string, scope: string): Promise<TablesView> {
  const q = new URLSearchParams({ scope });
  if (farm) q.set("farm", farm);
  const res = await fetch(`/api/tables?${q}`, { cache: "no-store" });
  const body = await res.json();
  // The flag lets the header's banner react to the agent going away at once.
  if (!res.ok) throw Object.assign(new Error(body?.error ?? `HTTP ${res.status}`), { agentUnavailable: body?.agentUnavailable === true });
  return body as TablesView;
}

function human(n: number): string {
  if (n < 1000) return String(n);
  const units = ["K", "M", "G", "T"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)}${units[u]}`;
}

export function LiveTables({ farms, initialFarm, initial = null }: { farms: string[]; initialFarm: string; initial?: TablesView | null }) {
  const [paused, setPaused] = useState(false);
  const [farm, setFarm] = useState(initialFarm);
  const [scope, setScope] = useState<"natfarm" | "all">("natfarm");
  const known = useMemo(() => new Set(farms), [farms]);
  const q = useQuery({
    queryKey: ["tables", farm, scope],
    queryFn: () => fetchTables(farm, scope),
    // The server rendered the first tables with the page.
    initialData: initial && farm === initialFarm && scope === "natfarm" ? initial : undefined,
    initialDataUpdatedAt: initial ? Date.parse(initial.at) : undefined,
    refetchInterval: paused ? false : REFRESH_MS,
    // Typing a farm name keeps the last tables on screen until the new ones arrive.
    placeholderData: (prev) => prev,
  });
  const view = q.data ?? null;

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-end gap-3 rounded-lg border border-line bg-surface p-3">
        <div>
          <label htmlFor="tables-farm" className="mb-1 block text-xs font-medium text-muted">
            Farm
          </label>
          <input
            id="tables-farm"
            list="tables-farm-names"
            value={farm}
            onChange={(e) => setFarm(e.target.value.trim())}
            placeholder="all farms (type a name)"
            className={`${inputClass} w-56`}
            autoComplete="off"
          />
          <datalist id="tables-farm-names">
            {farms.slice(0, 2000).map((f) => (
              <option key={f} value={f} />
            ))}
          </datalist>
        </div>
        <div>
          <label htmlFor="tables-scope" className="mb-1 block text-xs font-medium text-muted">
            Rules
          </label>
          <select id="tables-scope" value={scope} onChange={(e) => setScope(e.target.value as "natfarm" | "all")} className={`${inputClass} w-auto`} disabled={Boolean(farm)}>
            <option value="natfarm">natfarm's chains and hooks</option>
            <option value="all">Every chain, foreign rules too</option>
          </select>
        </div>
        <div className="ml-auto flex items-center gap-3">
          <p className="text-xs text-muted" aria-live="off">
            {q.data ? `Read ${utcText(q.data.at)}` : q.isLoading ? "Reading…" : ""}
            {!paused && q.isFetching && " · refreshing"}
          </p>
          <Button onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
            {paused ? "Resume auto-refresh" : "Pause auto-refresh"}
          </Button>
        </div>
      </div>

      {q.error && (
        <div role="alert" className="rounded-md border border-bad/40 bg-bad-soft px-4 py-3 text-sm text-bad">
          Reading the live tables failed: {(q.error as Error).message}
        </div>
      )}

      {view?.tables.map((t) => (
        <section key={t.name} aria-labelledby={`table-${t.name}`} className="rounded-lg border border-line bg-surface shadow-sm">
          <h2 id={`table-${t.name}`} className="border-b border-line px-4 py-3 font-mono text-sm font-semibold">
            table {t.name}
          </h2>
          {t.chains.length === 0 ? (
            <p className="px-4 py-6 text-sm text-muted">{farm ? `No rule of farm ${farm} in this table.` : "natfarm has no chain in this table."}</p>
          ) : (
            t.chains.map((c) => <ChainView key={c.name} table={t.name} chain={c} known={known} />)
          )}
        </section>
      ))}
      {view && (view.hidden > 0 || view.moreChains > 0) && (
        <p className="text-sm text-muted" role="status">
          {view.hidden > 0 ? `${view.hidden} more rules` : ""}
          {view.hidden > 0 && view.moreChains > 0 ? " and " : ""}
          {view.moreChains > 0 ? `${view.moreChains} more natfarm chains` : ""} not shown: pick a farm to see its rules.
        </p>
      )}
    </div>
  );
}

function ChainView({ table, chain, known }: { table: string; chain: TablesChain; known: Set<string> }) {
  return (
    <div className="border-b border-line last:border-0">
      <h3 className="flex flex-wrap items-center gap-2 px-4 pt-3 pb-1 text-sm">
        <span className="font-mono font-semibold">Chain {chain.name}</span>
        {chain.policy && <span className="text-xs text-muted">(policy {chain.policy})</span>}
        {chain.owned ? <Badge tone="accent">natfarm</Badge> : <Badge>built-in</Badge>}
      </h3>
      <ScrollRegion label={`Rules of ${table} ${chain.name}`}>
        <table className="w-full min-w-[48rem] text-xs" aria-label={`${table} ${chain.name}`}>
          <thead>
            <tr className="text-left text-[11px] uppercase tracking-wide text-muted">
              <th scope="col" className="w-20 px-4 py-1.5 text-right">
                Packets
              </th>
              <th scope="col" className="w-20 px-2 py-1.5 text-right">
                Bytes
              </th>
              <th scope="col" className="w-32 px-2 py-1.5">
                Owner
              </th>
              <th scope="col" className="px-2 py-1.5">
                Rule
              </th>
            </tr>
          </thead>
          <tbody>
            {chain.rules.length === 0 && (
              <tr>
                <td colSpan={4} className="px-4 py-2 text-muted">
                  empty
                </td>
              </tr>
            )}
            {chain.rules.map((r, i) => (
              <RuleRow key={i} rule={r} known={known} />
            ))}
          </tbody>
        </table>
      </ScrollRegion>
    </div>
  );
}

function RuleRow({ rule: r, known }: { rule: TablesRule; known: Set<string> }) {
  return (
    <tr className={`border-t border-line/60 align-top ${r.owned ? "" : "bg-surface-2/60"}`}>
      <td className="px-4 py-1.5 text-right font-mono tabular-nums" title={String(r.packets)}>
        {human(r.packets)}
      </td>
      <td className="px-2 py-1.5 text-right font-mono tabular-nums" title={`${r.bytes} bytes`}>
        {human(r.bytes)}
      </td>
      <td className="px-2 py-1.5">
        {r.farm ? (
          known.has(r.farm) ? (
            <Link
              href={`/farms/${encodeURIComponent(r.farm)}`}
              className="font-medium text-accent hover:underline"
              title={r.backend !== null ? `backend ${r.backend + 1} of ${r.farm} (rule comment FARM_${r.farm}_${r.backend}_)` : undefined}
            >
              {r.farm}
              {/* Backends are numbered from 1 on every page; the rule comment keeps the guide's 0-based index. */}
              {r.backend !== null && <span className="text-muted"> #{r.backend + 1}</span>}
            </Link>
          ) : (
            <Badge tone="warn" title="natfarm's comment, but no farm of that name in the database">
              stray {r.farm}
            </Badge>
          )
        ) : r.owned ? (
          <Badge tone="accent">natfarm</Badge>
        ) : (
          <Badge tone="warn" title="Not written by natfarm: left alone">
            foreign
          </Badge>
        )}
      </td>
      <td className="px-2 py-1.5 font-mono break-all">{r.spec}</td>
    </tr>
  );
}
