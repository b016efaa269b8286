"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useMemo, useState } from "react";
import type { TablesRule } from "@/lib/applier/tables";
import type { LiveTablesChain, LiveTablesView, TableSort } from "@/lib/console/tables-view";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { inputClass } from "@/components/ui/field";
import { utcText } from "@/components/ui/log-table";
import { ScrollRegion } from "@/components/ui/scroll-region";
import type { Engine } from "@/lib/kernel/engine";
import { ResetCounters } from "./reset-counters";

/**
 * mangle and nat as the kernel holds them, refreshed every 2 s. natfarm's
 * rules link to their farm; everyone else's are marked foreign and left as
 * they are. With thousands of farms, a farm filter keeps the page light.
 */
const REFRESH_MS = 2000;

type Filters = { farm: string; scope: "natfarm" | "all"; sort: TableSort; traffic: boolean };

function query(f: Filters, chain?: string): URLSearchParams {
  const q = new URLSearchParams();
  if (f.farm) q.set("farm", f.farm);
  if (f.scope !== "natfarm") q.set("scope", f.scope);
  if (f.sort !== "rule") q.set("sort", f.sort);
  if (f.traffic) q.set("traffic", "1");
  if (chain) q.set("chain", chain);
  return q;
}

/** The server filters, sorts and caps the rules: the whole snapshot is megabytes at 5,000 farms. */
async function fetchTables(f: Filters, chain?: string): Promise<LiveTablesView> {
  const res = await fetch(`/api/tables?${query(f, chain)}`, { cache: "no-store" });
  const body = await res.json();
  // The flag lets the header's banner react to the agent going away at once.
  if (!res.ok) throw Object.assign(new Error(body?.error ?? `HTTP ${res.status}`), { agentUnavailable: body?.agentUnavailable === true });
  return body as LiveTablesView;
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

const count = (n: number) => n.toLocaleString("en-US");

/** `reset`: the signed-in user may reset natfarm's counters (operator or higher), on this engine and node. */
export function LiveTables({
  farms,
  initialFilters,
  initial = null,
  reset = null,
}: {
  farms: string[];
  initialFilters: Filters;
  initial?: LiveTablesView | null;
  reset?: { engine: Engine; node: string } | null;
}) {
  const [paused, setPaused] = useState(false);
  const [filters, setFilters] = useState<Filters>(initialFilters);
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(() => new Set());
  const { farm, scope, sort, traffic } = filters;
  const known = useMemo(() => new Set(farms), [farms]);
  const set = (patch: Partial<Filters>) => {
    const next = { ...filters, ...patch };
    setFilters(next);
    setExpanded(new Set());
    // Kept in the URL (without a server round trip): a reload, Back or a shared link shows the same view.
    const q = query(next).toString();
    window.history.replaceState(null, "", q ? `/tables?${q}` : "/tables");
  };
  const same = (a: Filters, b: Filters) => a.farm === b.farm && a.scope === b.scope && a.sort === b.sort && a.traffic === b.traffic;
  const q = useQuery({
    queryKey: ["tables", farm, scope, sort, traffic],
    queryFn: () => fetchTables(filters),
    // The server rendered the first tables with the page.
    initialData: initial && same(filters, initialFilters) ? initial : undefined,
    initialDataUpdatedAt: initial ? Date.parse(initial.at) : undefined,
    refetchInterval: paused ? false : REFRESH_MS,
    // Typing a farm name keeps the last tables on screen until the new ones arrive.
    placeholderData: (prev) => prev,
  });
  const view = q.data ?? null;

  return (
    // What the tables shown were read for (the last ones stay on screen while a new filter's arrive).
    <div className="space-y-4" data-testid="live-tables" data-sort={view?.sort} data-traffic={view ? (view.traffic ? "1" : "0") : undefined}>
      <div className="flex flex-wrap items-end gap-3 rounded-lg border border-line bg-surface p-3">
        <div>
          <label htmlFor="tables-farm" className="mb-1 block text-xs font-medium text-muted">
            Farm
          </label>
          <input
            id="tables-farm"
            list="tables-farm-names"
            value={farm}
            onChange={(e) => set({ farm: e.target.value.trim() })}
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
          <select id="tables-scope" value={scope} onChange={(e) => set({ scope: e.target.value as Filters["scope"] })} className={`${inputClass} w-auto`} disabled={Boolean(farm)}>
            <option value="natfarm">natfarm's chains and hooks</option>
            <option value="all">Every chain, foreign rules too</option>
          </select>
        </div>
        <div>
          <label htmlFor="tables-sort" className="mb-1 block text-xs font-medium text-muted">
            Order
          </label>
          <select id="tables-sort" value={sort} onChange={(e) => set({ sort: e.target.value as TableSort })} className={`${inputClass} w-auto`}>
            <option value="rule">Rule order (as the kernel walks them)</option>
            <option value="packets">Most packets first</option>
            <option value="bytes">Most bytes first</option>
          </select>
        </div>
        <label className="flex items-center gap-2 pb-2 text-sm">
          <input type="checkbox" checked={traffic} onChange={(e) => set({ traffic: e.target.checked })} className="h-4 w-4" />
          With traffic only
        </label>
        <div className="ml-auto flex flex-wrap items-center gap-3">
          <p className="text-xs text-muted" aria-live="off">
            {q.data ? `Read ${utcText(q.data.at)}` : q.isLoading ? "Reading…" : ""}
            {!paused && q.isFetching && " · refreshing"}
          </p>
          <Button onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
            {paused ? "Resume auto-refresh" : "Pause auto-refresh"}
          </Button>
          {/* With a farm picked, only that farm's counters. */}
          {reset && <ResetCounters engine={reset.engine} node={reset.node} farm={known.has(farm) ? farm : undefined} />}
        </div>
      </div>

      {q.error && (
        <div role="alert" className="rounded-md border border-bad/40 bg-bad-soft px-4 py-3 text-sm text-bad">
          Reading the live tables failed: {(q.error as Error).message}
        </div>
      )}

      {!view && q.isLoading && <p className="rounded-lg border border-line bg-surface px-4 py-6 text-sm text-muted">Reading the live tables…</p>}
      {view?.tables.map((t) => (
        <section key={t.name} aria-labelledby={`table-${t.name}`} className="rounded-lg border border-line bg-surface shadow-sm">
          <h2 id={`table-${t.name}`} className="border-b border-line px-4 py-3 font-mono text-sm font-semibold">
            table {t.name}
          </h2>
          {t.chains.length === 0 ? (
            <p className="px-4 py-6 text-sm text-muted">
              {traffic ? "No rule in this table has counted a packet." : farm ? `No rule of farm ${farm} in this table.` : "natfarm has no chain in this table."}
            </p>
          ) : (
            t.chains.map((c) => {
              const id = `${t.name} ${c.name}`;
              return (
                <ChainView
                  key={c.name}
                  table={t.name}
                  chain={c}
                  known={known}
                  filters={filters}
                  paused={paused}
                  expanded={expanded.has(id)}
                  onExpand={() => setExpanded((e) => new Set(e).add(id))}
                />
              );
            })
          )}
        </section>
      ))}
      {view && (view.hidden > 0 || view.moreChains > 0 || view.quietChains > 0) && (
        <p className="text-sm text-muted" role="status">
          {[
            view.hidden > 0 ? `${count(view.hidden)} more rules cut where their chains say so` : "",
            view.moreChains > 0 ? `${count(view.moreChains)} more natfarm chains not read: pick a farm, or order by counters (which reads every chain), to see their rules` : "",
            view.quietChains > 0 ? `${count(view.quietChains)} chains without traffic left out` : "",
          ]
            .filter(Boolean)
            .join("; ")}
          .
        </p>
      )}
    </div>
  );
}

function ChainView({
  table,
  chain: listed,
  known,
  filters,
  paused,
  expanded,
  onExpand,
}: {
  table: string;
  chain: LiveTablesChain;
  known: Set<string>;
  filters: Filters;
  paused: boolean;
  expanded: boolean;
  onExpand: () => void;
}) {
  const id = `${table} ${listed.name}`;
  // An expanded chain is read on its own, whole (up to 5,000 rules), and refreshed with the page.
  const whole = useQuery({
    queryKey: ["tables-chain", id, filters.farm, filters.scope, filters.sort, filters.traffic],
    queryFn: () => fetchTables(filters, id),
    enabled: expanded,
    refetchInterval: paused ? false : REFRESH_MS,
    placeholderData: (prev) => prev,
  });
  const found = expanded ? whole.data?.tables.find((t) => t.name === table)?.chains.find((c) => c.name === listed.name) : undefined;
  const chain = found ?? listed;
  const more = chain.total - chain.rules.length;
  return (
    <div className="border-b border-line last:border-0">
      <h3 className="flex flex-wrap items-center gap-2 px-4 pt-3 pb-1 text-sm">
        <span className="font-mono font-semibold">Chain {chain.name}</span>
        {chain.policy && <span className="text-xs text-muted">(policy {chain.policy})</span>}
        {chain.owned ? <Badge tone="accent">natfarm</Badge> : <Badge>built-in</Badge>}
        <span className="text-xs text-muted">
          {count(chain.total)} rule{chain.total === 1 ? "" : "s"}
          {more > 0 ? `, ${count(chain.rules.length)} shown` : ""}
        </span>
      </h3>
      <ScrollRegion label={`Rules of ${table} ${chain.name}`}>
        <table className="w-full min-w-[48rem] text-xs" aria-label={`${table} ${chain.name}`}>
          <thead>
            <tr className="text-left text-[11px] uppercase tracking-wide text-muted">
              <th scope="col" className="w-20 px-4 py-1.5 text-right" aria-sort={filters.sort === "packets" ? "descending" : undefined}>
                Packets
              </th>
              <th scope="col" className="w-20 px-2 py-1.5 text-right" aria-sort={filters.sort === "bytes" ? "descending" : undefined}>
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
            {chain.total === 0 && (
              <tr>
                <td colSpan={4} className="px-4 py-2 text-muted">
                  empty
                </td>
              </tr>
            )}
            {chain.rules.map((r, i) => (
              <RuleRow key={i} rule={r} known={known} />
            ))}
            {more > 0 && (
              <tr className="border-t border-line/60" data-testid="chain-cut">
                <td colSpan={4} className="px-4 py-2">
                  <span className="mr-3 text-muted">
                    … {count(more)} more rule{more === 1 ? "" : "s"} in this chain
                  </span>
                  {!expanded ? (
                    <Button size="sm" onClick={onExpand} aria-label={`Show all ${count(chain.total)} rules of ${table} ${chain.name}`}>
                      Show all {count(chain.total)}
                    </Button>
                  ) : !found ? (
                    <span className="text-muted">Reading the chain…</span>
                  ) : (
                    <span className="text-muted">(one chain shows at most 5,000 rules)</span>
                  )}
                </td>
              </tr>
            )}
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
