import { FARM_STATUS_LABEL, type FarmStatus } from "@/lib/console/farm-status";
import { Badge, type BadgeTone } from "./badge";

const TONE: Record<FarmStatus, BadgeTone> = {
  running: "ok",
  degraded: "warn",
  stopped: "neutral",
  failed: "bad",
  pending: "warn",
  drift: "info",
  critical: "bad",
};

const DOT: Record<FarmStatus, string> = {
  running: "bg-ok",
  degraded: "bg-warn",
  stopped: "bg-muted",
  failed: "bg-bad",
  pending: "bg-warn",
  drift: "bg-info",
  critical: "bg-bad animate-pulse",
};

export function StatusBadge({ status, title }: { status: FarmStatus; title?: string }) {
  return (
    <Badge tone={TONE[status]} title={title}>
      <span aria-hidden="true" className={`h-1.5 w-1.5 rounded-full ${DOT[status]}`} />
      {FARM_STATUS_LABEL[status]}
    </Badge>
  );
}

export function ModeBadge({ mode }: { mode: string }) {
  return (
    <Badge tone={mode === "nat" ? "accent" : "neutral"} title={mode === "nat" ? "NAT: SNAT to the VIP, backends see the VIP" : "DNAT: backends see the client, replies routed back"}>
      {mode === "nat" ? "NAT" : "DNAT"}
    </Badge>
  );
}
