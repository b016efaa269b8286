"use client";

import { useQuery } from "@tanstack/react-query";
import { clusterMaintenanceAction } from "@/lib/actions/cluster";
import type { ClusterView, NodeView, ViewProblem } from "@/lib/service/cluster";
import { ActionButton } from "@/components/ui/action-button";
import { Badge, type BadgeTone } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { UtcTime, utcText } from "@/components/ui/log-table";

/** What the page hands over: the first reading, or why there is none. */
export type ClusterRead = { view: ClusterView; error?: undefined } | { view?: undefined; error: string; agentUnavailable: boolean };

const REFRESH_MS = 2000;

async function fetchCluster(): Promise<ClusterView> {
  const res = await fetch("/api/cluster", { cache: "no-store" });
  const body = await res.json();
  // The flag lets the header's banner react to the agent going away at once.
  if (!res.ok) throw Object.assign(new Error(body?.error ?? `HTTP ${res.status}`), { agentUnavailable: body?.agentUnavailable === true });
  return body as ClusterView;
}

const ROLE_TONE: Record<NodeView["role"], BadgeTone> = { master: "ok", backup: "info", fault: "warn", stopped: "bad", unknown: "neutral" };

export function ClusterLive({ initial, canOperate }: { initial: ClusterRead; canOperate: boolean }) {
  const q = useQuery({
    queryKey: ["cluster"],
    queryFn: fetchCluster,
    initialData: initial.view,
    initialDataUpdatedAt: initial.view?.configured ? Date.parse(initial.view.observedAt) : undefined,
    // A single node has nothing to poll for.
    refetchInterval: (query) => (query.state.data && !query.state.data.configured ? false : REFRESH_MS),
  });
  const view = q.data;
  const error = q.error?.message ?? (view ? null : initial.error);
  if (!view) {
    return (
      <p role="alert" className="rounded-md border border-bad/40 bg-bad-soft px-4 py-3 text-sm text-bad">
        The cluster could not be read: {error}
      </p>
    );
  }
  if (!view.configured) {
    return (
      <p role="status" className="rounded-lg border border-line bg-surface px-4 py-6 text-sm text-muted">
        {view.message}
      </p>
    );
  }
  const critical = view.problems.filter((p) => p.severity === "critical");
  const warnings = view.problems.filter((p) => p.severity === "warning");
  return (
    <div className="space-y-5">
      {error && (
        <p role="status" className="rounded-md border border-warn/40 bg-warn-soft px-4 py-2 text-sm text-warn">
          The last refresh failed ({error}): showing the reading of <UtcTime at={view.observedAt} />.
        </p>
      )}
      {critical.length > 0 && <Problems problems={critical} critical />}
      <Summary view={view} />
      {warnings.length > 0 && <Problems problems={warnings} critical={false} />}
      <div className="grid gap-5 lg:grid-cols-2">
        {view.nodes.map((n) => (
          <NodeCard key={n.id} node={n} desired={view.desired} canOperate={canOperate} />
        ))}
      </div>
    </div>
  );
}

function Problems({ problems, critical }: { problems: ViewProblem[]; critical: boolean }) {
  return (
    <div
      role={critical ? "alert" : "status"}
      className={`rounded-md border px-4 py-3 text-sm ${critical ? "border-bad/50 bg-bad-soft text-bad" : "border-warn/40 bg-warn-soft text-warn"}`}
    >
      <p className="font-semibold">{critical ? "Critical: the cluster needs attention now" : "Warnings"}</p>
      <ul className="mt-1 list-disc space-y-1 pl-5">
        {problems.map((p, i) => (
          <li key={`${p.code}-${i}`} data-code={p.code}>
            {p.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Summary({ view }: { view: Extract<ClusterView, { configured: true }> }) {
  const tone: BadgeTone = view.severity === "critical" ? "bad" : view.severity === "warning" ? "warn" : "ok";
  return (
    <Card title={`Cluster ${view.cluster}`} titleId="cluster-summary" actions={<Badge tone={tone}>{view.severity === "ok" ? "healthy" : view.severity}</Badge>}>
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 p-4 text-sm">
        <dt className="text-muted">Master</dt>
        <dd data-testid="cluster-master">{view.master ?? (view.masters.length > 1 ? `${view.masters.join(" and ")} (split brain)` : "none")}</dd>
        <dt className="text-muted">Floating addresses</dt>
        <dd className="font-mono">{view.floating.join(", ") || "none"}</dd>
        <dt className="text-muted">Desired farm set</dt>
        <dd>{view.desired ? <span className="font-mono">{view.desired.version}</span> : "not known"} {view.desired && <span className="text-muted">({view.desired.farms} farm(s) with rules, from the database)</span>}</dd>
        <dt className="text-muted">Read from</dt>
        <dd>
          {view.source}, at <UtcTime at={view.observedAt} />
        </dd>
      </dl>
    </Card>
  );
}

function since(iso: string | null): string {
  return iso ? utcText(iso) : "never announced";
}

function NodeCard({ node: n, desired, canOperate }: { node: NodeView; desired: Extract<ClusterView, { configured: true }>["desired"]; canOperate: boolean }) {
  const titleId = `node-${n.id}`;
  const c = n.applied.comparison;
  const stats = n.conntrackd.stats;
  return (
    <Card
      title={`Node ${n.name}`}
      titleId={titleId}
      actions={
        <>
          <span data-testid={`role-${n.name}`}>
            <Badge tone={ROLE_TONE[n.role]}>{n.role}</Badge>
          </span>
          {n.maintenance && <Badge tone="warn">in maintenance</Badge>}
        </>
      }
    >
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 p-4 text-sm">
        <dt className="text-muted">VRRP state</dt>
        <dd>
          {n.vrrpState ?? "none"} <span className="text-muted">since {since(n.vrrpSince)}</span>
          {!n.keepalivedRunning && <span className="text-bad"> · keepalived not running</span>}
          {n.vrrpState && !n.transitionDone && n.conntrackd.enabled && <span className="text-warn"> · conntrackd steps running</span>}
        </dd>
        <dt className="text-muted">Holds</dt>
        <dd className="font-mono">{n.holds.length ? n.holds.join(", ") : "no floating address"}</dd>
        {n.missing.length > 0 && (
          <>
            <dt className="text-muted">Lacks</dt>
            <dd className="font-mono text-warn">{n.missing.join(", ")}</dd>
          </>
        )}
        <dt className="text-muted">Links</dt>
        <dd>
          <ul className="flex flex-wrap gap-2">
            {Object.entries(n.links).map(([link, state]) => (
              <li key={link}>
                <Badge tone={state === "up" ? "ok" : "bad"}>
                  <span className="font-mono">{link}</span> {state}
                </Badge>
              </li>
            ))}
          </ul>
        </dd>
        <dt className="text-muted">conntrackd</dt>
        <dd>
          {!n.conntrackd.enabled ? (
            "off (connections are not synced)"
          ) : !n.conntrackd.running ? (
            <span className="text-bad">not running</span>
          ) : (
            <>
              {stats?.internal ?? "?"} own connection(s), {stats?.external ?? "?"} synced from the peer(s)
              {stats && Object.keys(stats.counters).length > 0 && (
                <details className="mt-1">
                  <summary className="cursor-pointer text-muted">all counters</summary>
                  <table className="mt-1 text-xs">
                    <tbody>
                      {Object.entries(stats.counters).map(([k, v]) => (
                        <tr key={k}>
                          <th scope="row" className="pr-3 text-left font-normal text-muted">
                            {k}
                          </th>
                          <td className="font-mono">{v}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </details>
              )}
            </>
          )}
        </dd>
        <dt className="text-muted">Farm set applied</dt>
        <dd data-testid={`applied-${n.name}`}>
          {n.applied.version === null ? (
            <span className="text-warn">unreadable{n.applied.error ? `: ${n.applied.error}` : ""}</span>
          ) : (
            <>
              <span className="font-mono">{n.applied.version}</span>{" "}
              {c === null ? (
                <span className="text-muted">(no desired set to compare with)</span>
              ) : c.matches ? (
                <Badge tone="ok">the desired set</Badge>
              ) : (
                <Badge tone="warn" title={desired ? `desired ${desired.version}` : undefined}>
                  differs from the desired set
                </Badge>
              )}
            </>
          )}
        </dd>
        <dt className="text-muted">Recorded by the node</dt>
        <dd data-testid={`record-${n.name}`}>
          {n.record === null ? (
            <span className="text-muted">no record (no sync loop on this node)</span>
          ) : (
            <>
              {n.record.role}, revision {n.record.appliedRevision ?? "–"}, <span className="font-mono">{n.record.appliedVersion ?? "–"}</span>{" "}
              {n.record.current === true ? <Badge tone="ok">current</Badge> : n.record.current === false ? <Badge tone="warn">behind</Badge> : null}
              {n.record.appliedAt ? <span className="text-muted"> · applied <UtcTime at={n.record.appliedAt} /></span> : null}
              <span className="text-muted"> · seen <UtcTime at={n.record.lastSeen} /></span>{" "}
              {n.record.stale ? (
                <Badge tone="warn" title="its health checker, which runs the node's sync, stopped reporting">
                  stale: no report for {Math.round(n.record.lastSeenAgoMs / 1000)} s
                </Badge>
              ) : null}
              {n.record.applyError ? <span className="block text-warn">last apply failed: {n.record.applyError}</span> : null}
            </>
          )}
        </dd>
      </dl>
      {canOperate && (
        <div className="flex flex-wrap items-center gap-2 border-t border-line px-4 py-3">
          {n.maintenance ? (
            <ActionButton action={clusterMaintenanceAction} fields={{ node: String(n.id), mode: "off" }} pendingText="Coming back…">
              Bring {n.name} back in service
            </ActionButton>
          ) : (
            <ActionButton action={clusterMaintenanceAction} fields={{ node: String(n.id), mode: "on" }} pendingText="Handing over…">
              Put {n.name} in maintenance
            </ActionButton>
          )}
          <span className="text-xs text-muted">
            {n.maintenance ? "It comes back as a backup and resyncs; the master keeps its role." : n.role === "master" ? "Its addresses move to a ready backup, connections kept." : "It stops standing by."}
          </span>
        </div>
      )}
    </Card>
  );
}
