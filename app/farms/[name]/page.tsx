import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { can, type Role } from "@/lib/auth/roles";
import { notFound } from "next/navigation";
import { Suspense } from "react";
import { deleteFarmAction, reapplyAction, setStatusAction } from "@/lib/actions/farms";
import { consoleEnv } from "@/lib/console/env";
import { backendCounts, farmStatus } from "@/lib/console/farm-model";
import { liveVersion } from "@/lib/console/live-types";
import { HealthCheckSchema } from "@/lib/farms/schema";
import { farmService } from "@/lib/console/farm-service";
import type { FarmRow } from "@/lib/service/farm-rows";
import { farmView } from "@/lib/console/farm-view";
import { BackendsTable } from "@/components/farm/backends-table";
import { CopyButton } from "@/components/farm/copy-button";
import { FarmDriftAlerts, LiveStatusBadge } from "@/components/farm/farm-drift";
import { FarmLiveProvider } from "@/components/farm/farm-live";
import { FarmStatistics, HealthEventsPanel } from "@/components/farm/farm-statistics";
import { TrafficGraph } from "@/components/farm/traffic-graph";
import { SettingsForm, type FarmSettings } from "@/components/farm/settings-form";
import { ModeToggle } from "@/components/farm/mode-toggle";
import { ActionButton } from "@/components/ui/action-button";
import { Card, PageTitle } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { ResetCounters } from "@/components/tables/reset-counters";
import { formatTarget } from "@/lib/privileged/target";
import { ModeBadge } from "@/components/ui/status-badge";

type Props = { params: Promise<{ name: string }> };

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  return { title: `Farm ${(await params).name}` };
}

/**
 * An unknown farm is a real 404: notFound() runs before any Suspense boundary
 * has rendered, so the response has not started (once a fallback streams,
 * the status is fixed at 200). Neither this segment nor any above it has a
 * loading.tsx for that reason (the farms list's is in app/(home)); the slow
 * part, the drift read from the kernel, streams inside the page's own
 * boundary once the farm is known to exist.
 */
export default async function FarmPage({ params }: Props) {
  const user = await requireUser();
  const { name } = await params;
  const row = await (await farmService()).getFarm(name);
  if (!row) notFound();
  return (
    <Suspense
      fallback={
        <p className="text-sm text-muted" role="status">
          Loading…
        </p>
      }
    >
      <FarmDetailView row={row} role={user.role} />
    </Suspense>
  );
}

async function FarmDetailView({ row: found, role }: { row: FarmRow; role: Role }) {
  // Drift (a read of the kernel through the agent) is fetched by the page itself: neither this
  // answer nor an action's re-render of it waits for the kernel.
  const row = found;
  const { target } = consoleEnv();
  const view = farmView(row, target.engine);
  const status = farmStatus(row, null, backendCounts(row));
  const version = liveVersion(row);
  const running = row.status === "up";
  const check = row.healthcheck ? HealthCheckSchema.safeParse(JSON.parse(row.healthcheck)) : null;
  const settings: FarmSettings = {
    vip: row.vip,
    ports: row.ports,
    protocol: row.protocol,
    scheduler: row.scheduler ?? "weight",
    persistence: row.persistence ?? "none",
    persistenceTtl: row.persistenceTtl ?? 120,
    healthcheck: check?.success ? check.data : null,
  };
  const hasCheck = settings.healthcheck !== null;
  const counts = backendCounts(row);

  return (
    <FarmLiveProvider farm={row.name} version={version}>
      <PageTitle
        title={
          <span className="flex flex-wrap items-center gap-2">
            <span className="font-mono">{row.name}</span>
            <LiveStatusBadge farm={row.name} version={version} row={{ status: row.status, applyState: row.applyState }} counts={counts} />
            <ModeBadge mode={row.mode} />
          </span>
        }
        subtitle={
          <span>
            <span className="font-mono break-all">
              {row.vip}:{row.ports} · {row.protocol}
            </span>
            <span className="text-muted">
              {" "}
              · scheduler {settings.scheduler}
              {settings.persistence === "srcip" ? ` · persistence source IP ${settings.persistenceTtl} s` : ""}
              {settings.healthcheck ? ` · ${settings.healthcheck.type} health check every ${settings.healthcheck.interval} s` : " · no health check"}
            </span>
          </span>
        }
        actions={
          <>
            {can(role, "operate") &&
              (running ? (
                <ConfirmDialog trigger="Stop farm" title={`Stop farm ${row.name}?`} confirm="Stop farm" confirmTone="danger" action={setStatusAction} fields={{ farm: row.name, status: "stopped" }}>
                  <p>
                    Every rule of the farm leaves the kernel: new connections to{" "}
                    <span className="font-mono">
                      {row.vip}:{row.ports}
                    </span>{" "}
                    are no longer balanced{counts.backendsUp ? ` over its ${counts.backendsUp} backend${counts.backendsUp === 1 ? "" : "s"} that are up` : ""} and reach the load balancer itself.
                  </p>
                  <p className="mt-2">Connections already open keep their translation (conntrack) until they end. The farm and its backends stay in the database: Start farm puts the rules back.</p>
                </ConfirmDialog>
              ) : (
                <ActionButton action={setStatusAction} fields={{ farm: row.name, status: "up" }} tone="primary" pendingText="Starting…">
                  Start farm
                </ActionButton>
              ))}
            {/* This farm's counters only, on this node: a stopped farm has none in the kernel. */}
            {can(role, "operate") && running && target.target && <ResetCounters engine={target.engine} farm={row.name} node={formatTarget(target.target)} />}
            {can(role, "administer") && (
            <ConfirmDialog trigger="Delete farm" triggerTone="danger" title={`Delete farm ${row.name}?`} confirm="Delete farm" confirmTone="danger" action={deleteFarmAction} fields={{ farm: row.name }}>
              <p>
                Its rules leave the kernel first; the farm is removed from the database only once that worked. New connections to{" "}
                <span className="font-mono">
                  {row.vip}:{row.ports}
                </span>{" "}
                will no longer be balanced.
              </p>
            </ConfirmDialog>
            )}
          </>
        }
      />

      {status === "critical" && (
        <div role="alert" data-testid="farm-critical" className="mb-5 rounded-lg border border-bad/40 bg-bad-soft p-4">
          <p className="font-semibold text-bad">Critical: no backend can take new connections</p>
          <p className="mt-1 text-sm">
            {counts.backends === 0
              ? "The farm has no backend."
              : `${counts.backends === 1 ? "Its backend is" : `All ${counts.backends} backends are`} out of the rule set (down by health check or in maintenance).`}{" "}
            New connections to{" "}
            <span className="font-mono">
              {row.vip}:{row.ports}
            </span>{" "}
            are not balanced.{" "}
            {counts.backends === 0 ? "Add a backend below." : hasCheck ? "The farm recovers by itself as soon as the health check brings a backend back." : ""}
          </p>
        </div>
      )}
      <FarmDriftAlerts
        farm={row.name}
        version={version}
        row={{ applyState: row.applyState, applyError: row.applyError, appliedAt: row.appliedAt }}
        canApply={target.canApply}
        mayApply={can(role, "operate")}
        reapply={reapplyAction}
      />

      <div className="space-y-5">
        <Card title="Backends" titleId="backends-title">
          <BackendsTable farm={row.name} backends={view.backends} hasCheck={hasCheck} context={{ where: `${row.vip}:${row.ports}`, stopped: !running }} />
        </Card>

        <div className="grid gap-5 xl:grid-cols-[3fr_2fr]">
          <Card title="Statistics" titleId="statistics-title">
            <FarmStatistics farm={row.name} backends={view.backends} />
          </Card>
          <Card title="Health events" titleId="health-events-title">
            <HealthEventsPanel farm={row.name} hasCheck={hasCheck} />
          </Card>
        </div>

        <Card title="Traffic" titleId="traffic-title">
          <TrafficGraph farm={row.name} />
        </Card>

        <Card title="Settings" titleId="settings-title">
          {can(role, "administer") ? (
            <SettingsForm farm={row.name} settings={settings} />
          ) : (
            <p className="p-4 text-sm text-muted">Only an administrator changes a farm's settings (shown above the page's title line).</p>
          )}
        </Card>

        <Card title="NAT type" titleId="mode-title">
            <div className="flex flex-wrap items-center gap-x-6 gap-y-3 p-4 text-sm">
              <ModeToggle farm={row.name} mode={row.mode as "nat" | "dnat"} otherMode={view.otherMode} diff={view.modeDiff} />
              <p className="min-w-0 flex-1 text-muted">
                {row.mode === "nat"
                  ? "NAT: destination and source are rewritten (SNAT to the VIP). Backends see the VIP as the client."
                  : "DNAT: only the destination is rewritten. Backends see the real client and must use the load balancer as their gateway."}
              </p>
            </div>
        </Card>

        <Card title="Generated rules" titleId="rules-title" actions={view.rules && <CopyButton text={view.rules} label="Copy generated rules" />}>
            <div className="p-4">
              <p className="mb-2 text-xs text-muted">Exactly what natfarm writes for this farm ({target.engine === "nftables" ? "nft commands in table ip natfarm" : "iptables-restore lines"}).</p>
              {view.rules ? (
                <pre
                  data-testid="generated-rules"
                  tabIndex={0}
                  aria-label={`Generated rules of ${row.name}`}
                  className="overflow-x-auto rounded-md border border-line bg-code p-3 font-mono text-xs leading-5"
                >
                  {view.rules}
                </pre>
              ) : (
                <p className="text-sm text-muted">{running ? "No backend is up: the farm has no rules." : "The farm is stopped: natfarm writes no rule for it."}</p>
              )}
            </div>
        </Card>
      </div>
    </FarmLiveProvider>
  );
}
