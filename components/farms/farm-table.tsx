"use client";

import { useQuery } from "@tanstack/react-query";
import { getCoreRowModel, getSortedRowModel, useReactTable, type ColumnDef, type SortingState } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useCallback, useDeferredValue, useEffect, useMemo, useRef, useState } from "react";
import { FARM_STATUS_LABEL, unpackSummaries, type FarmStatus, type FarmSummary, type PackedSummaries } from "@/lib/console/farm-status";
import { inputClass } from "@/components/ui/field";
import { ModeBadge, StatusBadge } from "@/components/ui/status-badge";
import { FarmBulkBar, FarmRowActions } from "./farm-list-actions";

/**
 * The farms list. Only the rows in view are in the DOM (5,000 farms render
 * as fast as 50), so it is an ARIA table of divs: row and column counts and
 * row indexes tell assistive technology what is not rendered. Sorting is
 * @tanstack/react-table's row model; search, filters and the sort live in
 * the URL.
 */
const WIDE = "hidden sm:block";
const ROW_HEIGHT = 48;

/** On a phone: (select,) name, VIP and status; the other columns are on the farm's page. */
function gridOf(canOperate: boolean): string {
  return canOperate
    ? "grid grid-cols-[1.75rem_minmax(0,1.2fr)_minmax(0,1.3fr)_7.5rem] sm:grid-cols-[1.75rem_minmax(9rem,1.4fr)_minmax(10rem,1.5fr)_5rem_5.5rem_8.5rem_6.5rem_5.5rem] items-center gap-2 sm:gap-3"
    : "grid grid-cols-[minmax(0,1.2fr)_minmax(0,1.3fr)_7.5rem] sm:grid-cols-[minmax(9rem,1.4fr)_minmax(10rem,1.5fr)_5rem_5.5rem_8.5rem_6.5rem] items-center gap-2 sm:gap-3";
}

const STATUSES = Object.keys(FARM_STATUS_LABEL) as FarmStatus[];
/** Worst first: sorting by status puts what needs an operator on top. */
const STATUS_ORDER: FarmStatus[] = ["critical", "failed", "drift", "pending", "degraded", "stopped", "running"];
const SORTABLE = ["name", "vip", "port", "protocol", "mode", "status", "backends"] as const;
type SortKey = (typeof SORTABLE)[number];

const ipValue = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + (Number(o) || 0), 0);
const firstPort = (ports: string) => Number.parseInt(ports, 10) || 0;

const COLUMNS: ColumnDef<FarmSummary>[] = [
  { id: "name", accessorFn: (f) => f.name, sortingFn: (a, b) => (a.original.name < b.original.name ? -1 : a.original.name > b.original.name ? 1 : 0) },
  { id: "vip", accessorFn: (f) => ipValue(f.vip), sortingFn: (a, b) => ipValue(a.original.vip) - ipValue(b.original.vip) || firstPort(a.original.ports) - firstPort(b.original.ports) },
  { id: "port", accessorFn: (f) => firstPort(f.ports), sortingFn: (a, b) => firstPort(a.original.ports) - firstPort(b.original.ports) || ipValue(a.original.vip) - ipValue(b.original.vip) },
  { id: "protocol", accessorFn: (f) => f.protocol, sortingFn: "text" },
  { id: "mode", accessorFn: (f) => f.mode, sortingFn: "text" },
  { id: "status", accessorFn: (f) => STATUS_ORDER.indexOf(f.status), sortingFn: "basic" },
  { id: "backends", accessorFn: (f) => f.backends, sortingFn: (a, b) => a.original.backends - b.original.backends || a.original.backendsUp - b.original.backendsUp },
];

/** "?sort=-vip": the column, descending when prefixed with "-"; name ascending when absent or unknown. */
function sortFromUrl(value: string | null): SortingState {
  const desc = value?.startsWith("-") ?? false;
  const id = value?.replace(/^-/, "") ?? "";
  return (SORTABLE as readonly string[]).includes(id) ? [{ id, desc }] : [{ id: "name", desc: false }];
}
function sortToUrl(s: SortingState): string {
  const first = s[0];
  if (!first || (first.id === "name" && !first.desc)) return "";
  return `${first.desc ? "-" : ""}${first.id}`;
}

async function fetchDrift(): Promise<{ drift: string[]; liveError: string | null }> {
  const res = await fetch("/api/drift", { cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

async function fetchHealth(): Promise<{ degraded: [string, number, number][] }> {
  const res = await fetch("/api/farms/health", { cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/**
 * A farm's status once the health checker has moved its backends since the
 * page was rendered: critical when none is up any more, degraded while some
 * are out, back to running (or its pending/drift verdict) when all are back.
 */
function withHealth(f: FarmSummary, up: number | undefined): FarmSummary {
  const backendsUp = up ?? f.backends;
  if (backendsUp === f.backendsUp) return f;
  if (f.status === "failed" || f.status === "stopped") return { ...f, backendsUp };
  if (backendsUp === 0) return { ...f, backendsUp, status: "critical" };
  if (f.status === "pending" || f.status === "drift") return { ...f, backendsUp };
  return { ...f, backendsUp, status: backendsUp < f.backends ? "degraded" : "running" };
}

export function FarmTable({ packed, live, canOperate = false, canAdminister = false }: { packed: PackedSummaries; live: boolean; canOperate?: boolean; canAdminister?: boolean }) {
  // Backends taken out or brought back by the health checker, every 5 s.
  const health = useQuery({ queryKey: ["farms-health"], queryFn: fetchHealth, enabled: live, refetchInterval: 5_000 });
  // Drift comes after the list: it needs a read of the whole kernel.
  const drift = useQuery({ queryKey: ["drift"], queryFn: fetchDrift, enabled: live, refetchInterval: 30_000 });
  const firstPacked = useRef(packed);
  const { refetch } = drift;
  useEffect(() => {
    // The farms changed (an action revalidated the page): compare again.
    if (live && packed !== firstPacked.current) void refetch();
  }, [packed, live, refetch]);
  const farms = useMemo(() => {
    let list = unpackSummaries(packed);
    if (health.data) {
      const up = new Map(health.data.degraded.map(([name, , n]) => [name, n]));
      list = list.map((f) => withHealth(f, up.get(f.name)));
    }
    const drifting = new Set(drift.data?.drift ?? []);
    if (drifting.size === 0) return list;
    return list.map((f) => (drifting.has(f.name) && (f.status === "running" || f.status === "stopped") ? { ...f, status: "drift" as const } : f));
  }, [packed, drift.data, health.data]);
  // Search, filters and sort live in the URL (?q=&status=&mode=&protocol=&sort=): Back to this page, a reload or a shared link keep them.
  const params = useSearchParams();
  const [query, setQuery] = useState(params.get("q") ?? "");
  const [status, setStatus] = useState<"" | FarmStatus>(STATUSES.includes(params.get("status") as FarmStatus) ? (params.get("status") as FarmStatus) : "");
  const [mode, setMode] = useState(["nat", "dnat"].includes(params.get("mode") ?? "") ? params.get("mode")! : "");
  const [protocol, setProtocol] = useState(["tcp", "udp", "sctp", "all"].includes(params.get("protocol") ?? "") ? params.get("protocol")! : "");
  const [sorting, setSorting] = useState<SortingState>(() => sortFromUrl(params.get("sort")));
  const deferred = useDeferredValue(query);
  useEffect(() => {
    const next = new URLSearchParams(window.location.search);
    for (const [k, v] of [["q", query], ["status", status], ["mode", mode], ["protocol", protocol], ["sort", sortToUrl(sorting)]] as const) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    const search = next.toString();
    if (search !== window.location.search.replace(/^\?/, "")) window.history.replaceState(window.history.state, "", `${window.location.pathname}${search ? `?${search}` : ""}`);
  }, [query, status, mode, protocol, sorting]);

  const filtered = useMemo(() => {
    const q = deferred.trim().toLowerCase();
    return farms.filter(
      (f) =>
        (!status || f.status === status) &&
        (!mode || f.mode === mode) &&
        (!protocol || f.protocol === protocol) &&
        (!q || f.name.toLowerCase().includes(q) || `${f.vip}:${f.ports}`.includes(q) || f.addresses.includes(q)),
    );
  }, [farms, deferred, status, mode, protocol]);

  const table = useReactTable({
    data: filtered,
    columns: COLUMNS,
    state: { sorting },
    onSortingChange: setSorting,
    getRowId: (f) => f.name,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
    enableMultiSort: false,
    sortDescFirst: false,
  });
  const rows = table.getRowModel().rows;

  // Selected farm names; what the bulk bar acts on is the selection among the rows shown.
  const [selected, setSelected] = useState<ReadonlySet<string>>(() => new Set());
  const shownSelected = useMemo(() => filtered.filter((f) => selected.has(f.name)), [filtered, selected]);
  const allShown = filtered.length > 0 && shownSelected.length === filtered.length;
  const toggle = useCallback((name: string, on: boolean) => {
    setSelected((s) => {
      const next = new Set(s);
      if (on) next.add(name);
      else next.delete(name);
      return next;
    });
  }, []);
  const selectAllShown = (on: boolean) => setSelected(on ? new Set(filtered.map((f) => f.name)) : new Set());
  const headerBox = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (headerBox.current) headerBox.current.indeterminate = shownSelected.length > 0 && !allShown;
  }, [shownSelected.length, allShown]);

  const counts = useMemo(() => {
    const c: Partial<Record<FarmStatus, number>> = {};
    for (const f of farms) c[f.status] = (c[f.status] ?? 0) + 1;
    return c;
  }, [farms]);

  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    // Lets the server render the first screen of rows, before any script runs.
    initialRect: { width: 1024, height: 720 },
  });

  const grid = gridOf(canOperate);
  const sortOf = (id: SortKey): "ascending" | "descending" | "none" => {
    const s = sorting[0];
    return s?.id === id ? (s.desc ? "descending" : "ascending") : "none";
  };
  const sortButton = (id: SortKey, label: string) => {
    const now = sortOf(id);
    return (
      <button
        type="button"
        onClick={() => setSorting([{ id, desc: now === "ascending" }])}
        className="inline-flex items-center gap-1 rounded-sm font-medium uppercase tracking-wide hover:text-fg focus-visible:outline-2"
        aria-label={`Sort by ${label}${now === "ascending" ? ", descending" : ""}`}
      >
        {label}
        <span aria-hidden="true" className="text-[0.65rem]">
          {now === "ascending" ? "▲" : now === "descending" ? "▼" : "↕"}
        </span>
      </button>
    );
  };

  return (
    <div>
      <div role="search" aria-label="Filter farms" className="flex flex-wrap items-end gap-3 border-b border-line px-4 py-3">
        <div className="min-w-[14rem] flex-1">
          <label htmlFor="farm-search" className="mb-1 block text-xs font-medium text-muted">
            Search
          </label>
          <input
            id="farm-search"
            type="search"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="e.g. a name, VIP:port or backend address"
            className={inputClass}
          />
        </div>
        <Filter id="filter-status" label="Status" value={status} onChange={(v) => setStatus(v as FarmStatus | "")}>
          <option value="">All statuses</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {FARM_STATUS_LABEL[s]} ({counts[s] ?? 0})
            </option>
          ))}
        </Filter>
        <Filter id="filter-mode" label="NAT type" value={mode} onChange={setMode}>
          <option value="">NAT and DNAT</option>
          <option value="nat">NAT</option>
          <option value="dnat">DNAT</option>
        </Filter>
        <Filter id="filter-protocol" label="Protocol" value={protocol} onChange={setProtocol}>
          <option value="">All protocols</option>
          <option value="tcp">tcp</option>
          <option value="udp">udp</option>
          <option value="sctp">sctp</option>
          <option value="all">all</option>
        </Filter>
      </div>
      {canOperate && (
        <FarmBulkBar
          selected={shownSelected}
          hiddenSelected={selected.size - shownSelected.length}
          canAdminister={canAdminister}
          searchedAddress={deferred.trim()}
          onDone={() => setSelected(new Set())}
          onClear={() => setSelected(new Set())}
        />
      )}
      <div className="flex flex-wrap items-center justify-between gap-2 px-4 pt-2 text-xs text-muted">
        <p aria-live="polite" data-testid="farm-count">
          {filtered.length === farms.length ? `${farms.length} farm${farms.length === 1 ? "" : "s"}` : `${filtered.length} of ${farms.length} farms`}
        </p>
        {live && (
          <p role="status" data-testid="drift-check" className={drift.data?.liveError || drift.error ? "text-warn" : ""}>
            {drift.isPending
              ? "Comparing with the live rules…"
              : drift.error
                ? `Live rules could not be compared: ${(drift.error as Error).message}`
                : drift.data?.liveError
                  ? `Live rules could not be read, drift unknown: ${drift.data.liveError}`
                  : `Compared with the live rules: ${drift.data?.drift.length ? `${drift.data.drift.length} farm(s) drifted` : "no drift"}`}
          </p>
        )}
      </div>

      <div className="overflow-x-auto">
        <div role="table" aria-label="Farms" aria-rowcount={rows.length + 1} className={`text-sm ${canOperate ? "sm:min-w-[56rem]" : "sm:min-w-[48rem]"}`}>
          <div role="rowgroup">
            <div role="row" aria-rowindex={1} className={`${grid} border-b border-line px-4 py-2 text-xs font-medium uppercase tracking-wide text-muted`}>
              {canOperate && (
                <span role="columnheader" aria-label="Select">
                  <input
                    ref={headerBox}
                    type="checkbox"
                    className="h-4 w-4 accent-accent"
                    checked={allShown}
                    disabled={filtered.length === 0}
                    onChange={(e) => selectAllShown(e.target.checked)}
                    aria-label={`Select all ${filtered.length} farms shown`}
                  />
                </span>
              )}
              <span role="columnheader" aria-sort={sortOf("name")}>
                {sortButton("name", "Name")}
              </span>
              <span role="columnheader" aria-sort={sorting[0]?.id === "port" ? sortOf("port") : sortOf("vip")} className="inline-flex items-center gap-1">
                {sortButton("vip", "VIP")}
                <span aria-hidden="true">:</span>
                {sortButton("port", "ports")}
              </span>
              <span role="columnheader" className={WIDE} aria-sort={sortOf("protocol")}>
                {sortButton("protocol", "Protocol")}
              </span>
              <span role="columnheader" className={WIDE} aria-sort={sortOf("mode")}>
                {sortButton("mode", "NAT type")}
              </span>
              <span role="columnheader" aria-sort={sortOf("status")}>
                {sortButton("status", "Status")}
              </span>
              <span role="columnheader" className={`${WIDE} text-right`} aria-sort={sortOf("backends")}>
                {sortButton("backends", "Backends")}
              </span>
              {canOperate && (
                <span role="columnheader" className={`${WIDE} text-right`}>
                  Actions
                </span>
              )}
            </div>
          </div>
          <div
            ref={scroller}
            role="rowgroup"
            className="relative max-h-[min(65vh,44rem)] overflow-auto"
            style={{ height: rows.length ? rows.length * ROW_HEIGHT : 160 }}
            data-testid="farm-rows"
          >
            {rows.length === 0 ? (
              <div role="row" aria-rowindex={2} className="px-4 py-10 text-center text-muted">
                <span role="cell">{farms.length === 0 ? "No farms yet: create one, or start from the guide's example." : "No farm matches the filters."}</span>
              </div>
            ) : (
              <div style={{ height: virtual.getTotalSize() }} className="relative">
                {virtual.getVirtualItems().map((item) => {
                  const f = rows[item.index]!.original;
                  return (
                    <div
                      key={f.name}
                      role="row"
                      aria-rowindex={item.index + 2}
                      aria-selected={canOperate ? selected.has(f.name) : undefined}
                      className={`${grid} absolute inset-x-0 border-b border-line px-4 hover:bg-surface-2`}
                      style={{ height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
                    >
                      {canOperate && (
                        <span role="cell">
                          <input
                            type="checkbox"
                            className="h-4 w-4 accent-accent"
                            checked={selected.has(f.name)}
                            onChange={(e) => toggle(f.name, e.target.checked)}
                            aria-label={`Select farm ${f.name}`}
                          />
                        </span>
                      )}
                      <span role="cell" className="truncate">
                        <Link href={`/farms/${encodeURIComponent(f.name)}`} className="font-medium text-accent hover:underline">
                          {f.name}
                        </Link>
                      </span>
                      <span role="cell" className="truncate font-mono text-xs">
                        {f.vip}:{f.ports}
                      </span>
                      <span role="cell" className={`${WIDE} font-mono text-xs`}>
                        {f.protocol}
                      </span>
                      <span role="cell" className={WIDE}>
                        <ModeBadge mode={f.mode} />
                      </span>
                      <span role="cell">
                        <StatusBadge status={f.status} title={f.error ?? undefined} />
                      </span>
                      <span role="cell" className={`${WIDE} text-right tabular-nums`} title={`${f.backendsUp} of ${f.backends} up`}>
                        {f.backends}
                        {f.backendsUp !== f.backends && <span className="text-muted"> ({f.backendsUp} up)</span>}
                      </span>
                      {canOperate && (
                        <span role="cell" className={`${WIDE} text-right`}>
                          <FarmRowActions farm={f} />
                        </span>
                      )}
                    </div>
                  );
                })}
              </div>
            )}
          </div>
        </div>
      </div>
    </div>
  );
}

function Filter({ id, label, value, onChange, children }: { id: string; label: string; value: string; onChange: (v: string) => void; children: React.ReactNode }) {
  return (
    <div>
      <label htmlFor={id} className="mb-1 block text-xs font-medium text-muted">
        {label}
      </label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)} className={`${inputClass} w-auto`}>
        {children}
      </select>
    </div>
  );
}
