"use client";

import { useId, useMemo, useState } from "react";
import { bulkFarmsAction, setStatusAction } from "@/lib/actions/farms";
import type { ActionState } from "@/lib/actions/state";
import type { FarmSummary } from "@/lib/console/farm-status";
import { ActionButton } from "@/components/ui/action-button";
import { Button } from "@/components/ui/button";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { inputClass } from "@/components/ui/field";

/**
 * What an operator does from the farms list: start or stop one farm (Stop
 * asks first, as on the farm's page), and start, stop, drain a backend
 * address or (admins) delete the selected farms, each after ONE
 * confirmation that lists what changes. The server checks the role again:
 * these controls are only what the role may ask for.
 */
const where = (f: FarmSummary) => `${f.vip}:${f.ports}`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
/** A confirmation lists this many farms; the rest are counted (the dialog of 2,000 farms stays readable). */
const LISTED = 50;

export function FarmRowActions({ farm }: { farm: FarmSummary }) {
  if (!farm.enabled) {
    return (
      <ActionButton action={setStatusAction} fields={{ farm: farm.name, status: "up" }} size="sm" label={`Start farm ${farm.name}`} pendingText="Starting…">
        Start
      </ActionButton>
    );
  }
  return (
    <ConfirmDialog
      trigger="Stop"
      triggerSize="sm"
      triggerLabel={`Stop farm ${farm.name}`}
      title={`Stop farm ${farm.name}?`}
      confirm="Stop farm"
      confirmTone="danger"
      action={setStatusAction}
      fields={{ farm: farm.name, status: "stopped" }}
    >
      <div className="text-left">
        <p>
          Every rule of the farm leaves the kernel: new connections to <span className="font-mono">{where(farm)}</span> are no longer balanced
          {farm.backendsUp ? ` over its ${plural(farm.backendsUp, "backend")} that ${farm.backendsUp === 1 ? "is" : "are"} up` : ""} and reach the load balancer itself.
        </p>
        <p className="mt-2">Connections already open keep their translation (conntrack) until they end. The farm and its backends stay in the database: Start puts the rules back.</p>
      </div>
    </ConfirmDialog>
  );
}

function FarmList({ farms, label }: { farms: FarmSummary[]; label: string }) {
  return (
    <>
      <ul aria-label={label} className="mt-2 list-disc pl-5 font-mono text-xs">
        {farms.slice(0, LISTED).map((f) => (
          <li key={f.name}>
            {f.name} <span className="text-muted">({where(f)})</span>
          </li>
        ))}
      </ul>
      {farms.length > LISTED && <p className="mt-1 text-xs text-muted">and {farms.length - LISTED} more.</p>}
    </>
  );
}

/** Whether the farm has a backend at `q` ("203.0.113.10": any port; "203.0.113.10:80": that one). */
function hasAddress(f: FarmSummary, q: string): boolean {
  return !!q && f.addresses.split(" ").some((a) => a === q || a.startsWith(`${q}:`));
}
const ADDRESS = /^\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?$/;

export function FarmBulkBar({
  selected,
  hiddenSelected,
  canAdminister,
  searchedAddress,
  onDone,
  onClear,
}: {
  selected: FarmSummary[];
  hiddenSelected: number;
  canAdminister: boolean;
  /** The search box's text: when it is an address, the drain field starts with it. */
  searchedAddress: string;
  onDone: () => void;
  onClear: () => void;
}) {
  const addressId = useId();
  const [typed, setTyped] = useState<string | null>(null);
  const address = (typed ?? (ADDRESS.test(searchedAddress) ? searchedAddress : "")).trim();
  const stopping = useMemo(() => selected.filter((f) => f.enabled), [selected]);
  const starting = useMemo(() => selected.filter((f) => !f.enabled), [selected]);
  const draining = useMemo(() => (ADDRESS.test(address) ? selected.filter((f) => hasAddress(f, address)) : []), [selected, address]);
  const names = (list: FarmSummary[]) => list.map((f) => f.name).join("\n");
  // The selection is cleared once the change went through: what was selected is not what is shown any more.
  const run = async (prev: ActionState, form: FormData) => {
    const r = await bulkFarmsAction(prev, form);
    if (r.status === "ok") {
      onDone();
      setTyped(null);
    }
    return r;
  };
  if (selected.length === 0 && hiddenSelected === 0) {
    return (
      <p className="border-b border-line px-4 py-2 text-xs text-muted" data-testid="bulk-hint">
        Select farms with their boxes (or all shown) to start, stop, drain a backend address{canAdminister ? " or delete" : ""} in one go.
      </p>
    );
  }
  return (
    <div role="toolbar" aria-label="Selected farms" className="flex flex-wrap items-end gap-2 border-b border-line bg-surface-2 px-4 py-2">
      <p aria-live="polite" className="mr-2 self-center text-sm font-medium" data-testid="bulk-count">
        {plural(selected.length, "farm")} selected
        {hiddenSelected > 0 && <span className="font-normal text-muted"> ({hiddenSelected} more hidden by the filters, left out)</span>}
      </p>
      <ConfirmDialog
        trigger={`Start (${starting.length})`}
        triggerSize="sm"
        triggerLabel={`Start ${plural(starting.length, "selected farm")}`}
        disabled={starting.length === 0}
        title={`Start ${plural(starting.length, "farm")}?`}
        confirm={`Start ${plural(starting.length, "farm")}`}
        action={run}
        fields={{ op: "start", farms: names(starting) }}
      >
        <p>Their rules go into the kernel in one apply: new connections to each are balanced again.</p>
        <FarmList farms={starting} label="Farms to start" />
        {starting.length < selected.length && <p className="mt-2 text-xs text-muted">{plural(selected.length - starting.length, "selected farm")} already started: unchanged.</p>}
      </ConfirmDialog>
      <ConfirmDialog
        trigger={`Stop (${stopping.length})`}
        triggerSize="sm"
        triggerLabel={`Stop ${plural(stopping.length, "selected farm")}`}
        disabled={stopping.length === 0}
        title={`Stop ${plural(stopping.length, "farm")}?`}
        confirm={`Stop ${plural(stopping.length, "farm")}`}
        confirmTone="danger"
        action={run}
        fields={{ op: "stop", farms: names(stopping) }}
      >
        <p>Every rule of these farms leaves the kernel, in one apply: new connections to them are no longer balanced and reach the load balancer itself. Open connections keep their translation until they end.</p>
        <FarmList farms={stopping} label="Farms to stop" />
        {stopping.length < selected.length && <p className="mt-2 text-xs text-muted">{plural(selected.length - stopping.length, "selected farm")} already stopped: unchanged.</p>}
      </ConfirmDialog>
      <div className="flex items-end gap-1">
        <div>
          <label htmlFor={addressId} className="mb-1 block text-xs font-medium text-muted">
            Backend address to drain
          </label>
          <input
            id={addressId}
            value={typed ?? address}
            onChange={(e) => setTyped(e.target.value)}
            placeholder="e.g. 203.0.113.10 or 203.0.113.10:80"
            className={`${inputClass} h-8 w-64 text-xs`}
          />
        </div>
        <ConfirmDialog
          trigger={`Drain (${draining.length})`}
          triggerSize="sm"
          triggerLabel={`Drain ${address || "a backend address"} in ${plural(draining.length, "selected farm")}`}
          disabled={draining.length === 0}
          title={`Drain backend ${address} in ${plural(draining.length, "farm")}?`}
          confirm={`Drain in ${plural(draining.length, "farm")}`}
          confirmTone="danger"
          action={run}
          fields={{ op: "drain", farms: names(draining), address }}
        >
          <p>
            Backend <span className="font-mono">{address}</span> goes into maintenance in each of these farms, in one apply: it gets no new connections, the open ones continue; the farms&apos; other backends share
            its traffic.
          </p>
          <FarmList farms={draining} label="Farms where it drains" />
          {draining.length < selected.length && <p className="mt-2 text-xs text-muted">{plural(selected.length - draining.length, "selected farm")} without this backend: unchanged.</p>}
        </ConfirmDialog>
      </div>
      {canAdminister && (
        <ConfirmDialog
          trigger={`Delete (${selected.length})`}
          triggerSize="sm"
          triggerTone="danger"
          triggerLabel={`Delete ${plural(selected.length, "selected farm")}`}
          title={`Delete ${plural(selected.length, "farm")}?`}
          confirm={`Delete ${plural(selected.length, "farm")}`}
          confirmTone="danger"
          action={run}
          fields={{ op: "delete", farms: names(selected) }}
        >
          <p>Their rules leave the kernel first, in one apply; the farms are removed from the database only once that worked. New connections to them are no longer balanced.</p>
          <FarmList farms={selected} label="Farms to delete" />
        </ConfirmDialog>
      )}
      <Button size="sm" tone="ghost" onClick={onClear}>
        Clear selection
      </Button>
    </div>
  );
}
