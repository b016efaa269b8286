"use client";

import { useCan } from "@/components/auth/role";
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { addBackendAction, removeBackendAction, setMaintenanceAction, updateBackendAction } from "@/lib/actions/backends";
import { IDLE } from "@/lib/actions/state";
import type { BackendView } from "@/lib/console/farm-view";
import { ActionButton } from "@/components/ui/action-button";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useFarmLive } from "./farm-live";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { FieldError, inputClass } from "@/components/ui/field";
import { useToastedAction } from "@/components/use-action-toast";
import { UtcTime } from "@/components/ui/log-table";
import { ScrollRegion } from "@/components/ui/scroll-region";
import { backendFromForm } from "@/lib/console/form-data";
import { BackendSchema } from "@/lib/farms/schema";

const STATES = ["up", "down", "maintenance"] as const;

function percent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

const nameOf = (b: { ip: string; port: number | null }) => `${b.ip}${b.port ? `:${b.port}` : ""}`;

/** Where the farm is and whether it runs: what the confirmations' consequences depend on. */
export interface FarmContext {
  /** VIP:ports, as the consequences name it. */
  where: string;
  stopped: boolean;
}

/** A share as the page shows it: none while the farm is stopped (no rule gives it any). */
function Share({ share }: { share: number | null }) {
  if (share === null) return <span className="text-muted">none: farm stopped</span>;
  return (
    <div className="flex items-center gap-2">
      <div aria-hidden="true" className="h-2 w-20 overflow-hidden rounded-full bg-surface-2 sm:w-28">
        <div className="h-full rounded-full bg-accent" style={{ width: `${share * 100}%` }} />
      </div>
      <span className="tabular-nums">{percent(share)}</span>
    </div>
  );
}

/** What removing backend `b` does, said before it is done. */
function removalConsequence(b: BackendView, all: BackendView[], stateOf: (b: BackendView) => string, farm: FarmContext): string {
  const others = all.filter((x) => x.mark !== b.mark);
  const othersUp = others.filter((x) => stateOf(x) === "up").length;
  if (farm.stopped) {
    return others.length === 0
      ? "The farm is stopped, and once started it will have no backend: new connections to it will not be balanced until one is added."
      : `The farm is stopped: nothing is balanced now. Once started, its ${others.length} other backend${others.length === 1 ? "" : "s"} take its place.`;
  }
  if (others.length === 0) {
    return `This is the farm's only backend: once it is removed the farm has none, and new connections to ${farm.where} are not balanced (the farm shows critical) until one is added.`;
  }
  if (othersUp === 0) {
    return `No other backend is up: once it is removed, new connections to ${farm.where} are not balanced (the farm shows critical) until one comes back.`;
  }
  if (stateOf(b) !== "up" || !b.share) return "It takes no new connections now, so the other backends' shares do not change.";
  return `The other ${othersUp === 1 ? "backend that is up takes" : `${othersUp} backends that are up share`} its ${percent(b.share)} of new connections.`;
}


/**
 * A backend's state, live from the page's feed: up, down (by the health
 * check, with its last probe and when) or maintenance (by an operator).
 */
function BackendState({ backend: b, hasCheck }: { backend: BackendView; hasCheck: boolean }) {
  const { live } = useFarmLive();
  const l = live?.backends.find((x) => x.mark === b.mark);
  const state = l?.state ?? b.state;
  const detail = l ? l.healthDetail : b.healthDetail;
  const at = l ? l.healthAt : b.healthAt;
  const title = state === "down" ? "down: taken out by the health check" : state === "maintenance" ? "maintenance: taken out by an operator" : "up: in the rule set";
  return (
    <div className="min-w-[8rem]" data-testid={`backend-state-${b.markHex}`}>
      <Badge tone={state === "up" ? "ok" : state === "down" ? "bad" : "warn"} title={title}>
        <span aria-hidden="true" className={`h-1.5 w-1.5 rounded-full ${state === "up" ? "bg-ok" : state === "down" ? "bg-bad" : "bg-warn"}`} />
        {state}
      </Badge>
      {hasCheck && state !== "maintenance" && (
        <p className="mt-0.5 max-w-[14rem] truncate text-[11px] text-muted" title={detail ? `last probe: ${detail}${at ? ` at ${at}` : ""}` : undefined}>
          {detail ? (
            <>
              <span className={state === "down" ? "text-bad" : ""}>{detail}</span>
              {at && (
                <>
                  {" · "}
                  <UtcTime at={at} />
                </>
              )}
            </>
          ) : (
            "not probed yet"
          )}
        </p>
      )}
      {state === "maintenance" && <p className="mt-0.5 text-[11px] text-muted">no new connections</p>}
    </div>
  );
}

/**
 * The farm's backends: a table on wider screens, one card per backend on a
 * phone (share, state and actions first, nothing cut off). Backends are
 * numbered from 1 here as in every form; the rule comments keep the guide's
 * 0-based index (FARM_<farm>_0_ is backend 1).
 */
export function BackendsTable({ farm, backends: fromServer, hasCheck = false, context }: { farm: string; backends: BackendView[]; hasCheck?: boolean; context: FarmContext }) {
  const [editing, setEditing] = useState<number | null>(null);
  // A saved edit shows in its row as soon as the server says it was applied;
  // the page the action re-rendered (shares, probabilities) replaces it.
  const [saved, setSaved] = useState<Map<number, Partial<BackendView>>>(() => new Map());
  useEffect(() => setSaved((m) => (m.size ? new Map() : m)), [fromServer]);
  const backends = saved.size ? fromServer.map((b) => (saved.has(b.mark) ? { ...b, ...saved.get(b.mark) } : b)) : fromServer;
  const onSaved = useCallback((mark: number, form: FormData) => {
    setEditing(null);
    setSaved((m) => new Map(m).set(mark, savedValues(form)));
  }, []);
  const { live } = useFarmLive();
  const mayOperate = useCan("operate");
  const stateOf = (b: BackendView) => live?.backends.find((x) => x.mark === b.mark)?.state ?? b.state;
  const openOf = (b: BackendView) => {
    const st = live?.backends.find((x) => x.mark === b.mark)?.stats;
    return st ? st.established + st.pending : null;
  };
  const actions = (b: BackendView, where: "table" | "card") =>
    mayOperate && (
      <BackendActions
        farm={farm}
        backend={b}
        state={stateOf(b)}
        open={openOf(b)}
        consequence={removalConsequence(b, backends, stateOf, context)}
        onEdit={() => setEditing(b.mark)}
        compact={where === "card"}
      />
    );
  // "sending": the values just sent, shown at once while the server applies them; "saved": applied,
  // until the page the action re-rendered arrives. Shares and probabilities follow from every
  // backend's weight and state, so both wait for the server's.
  const cardBody = (b: BackendView, stage: Stage) => (
    <>
      <div className="flex items-start justify-between gap-3">
        <p className="min-w-0">
          <span className="font-mono text-xs text-muted">#{b.position + 1}</span> <span className="font-mono break-all">{nameOf(b)}</span>
          <span className="block text-xs text-muted">
            weight {b.weight} · priority {b.priority} · mark <span className="font-mono">{b.markHex}</span>
            {b.port === null ? " · client's port" : ""}
          </span>
        </p>
        <BackendState backend={b} hasCheck={hasCheck} />
      </div>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <div>
          <span className="mr-2 text-xs text-muted">Share</span>
          <span className="inline-block align-middle">{stage ? <SavingNote stage={stage} /> : <Share share={b.share} />}</span>
        </div>
        <span className="font-mono text-xs text-muted">{!stage && b.probability ? `probability ${b.probability}` : ""}</span>
      </div>
      {stage === "sending" ? <SavingNote stage={stage} /> : actions(b, "card")}
    </>
  );
  const tableRow = (b: BackendView, stage: Stage) => (
    <tr key={b.mark} className="border-b border-line last:border-0" aria-busy={stage === "sending" || undefined} data-saving={stage === "sending" || undefined}>
      <td className="px-4 py-2.5 font-mono text-xs text-muted">{b.position + 1}</td>
      <td className="px-2 py-2.5 font-mono">{b.ip}</td>
      <td className="px-2 py-2.5 font-mono">{b.port ?? <span className="text-muted">client's</span>}</td>
      <td className="px-2 py-2.5 tabular-nums">{b.weight}</td>
      <td className="px-2 py-2.5 tabular-nums">{b.priority}</td>
      <td className="px-2 py-2.5">{stage ? <SavingNote stage={stage} /> : <Share share={b.share} />}</td>
      <td className="px-2 py-2.5 font-mono text-xs">{stage ? "" : (b.probability ?? <span className="text-muted">no rule</span>)}</td>
      <td className="px-2 py-2.5 font-mono text-xs">{b.markHex}</td>
      <td className="px-2 py-2.5">
        <BackendState backend={b} hasCheck={hasCheck} />
      </td>
      <td className="px-4 py-2.5">{stage === "sending" ? <SavingNote stage={stage} /> : actions(b, "table")}</td>
    </tr>
  );
  return (
    <div>
      <ul className="divide-y divide-line sm:hidden" aria-label={`Backends of ${farm}`}>
        {backends.length === 0 && <li className="px-4 py-6 text-center text-sm text-muted">No backends: the farm answers nothing until one is added.</li>}
        {backends.map((b) =>
          editing === b.mark ? (
            <li key={b.mark} className="space-y-2 px-4 py-3 text-sm" aria-label={`Backend ${b.position + 1}: ${nameOf(b)}`}>
              <EditForm farm={farm} backend={b} onDone={() => setEditing(null)} onSaved={onSaved} idPrefix="edit-card" display={(v) => cardBody({ ...b, ...v }, "sending")} />
            </li>
          ) : (
            <li key={b.mark} className="space-y-2 px-4 py-3 text-sm" aria-label={`Backend ${b.position + 1}: ${nameOf(b)}`}>
              {cardBody(b, saved.has(b.mark) ? "saved" : null)}
            </li>
          ),
        )}
      </ul>
      <ScrollRegion label={`Backends of ${farm}, table`} className="hidden sm:block">
        <table className="w-full min-w-[52rem] text-sm" aria-label={`Backends of ${farm}`}>
          <thead>
            <tr className="border-b border-line text-left text-xs font-medium uppercase tracking-wide text-muted">
              <th scope="col" className="px-4 py-2">#</th>
              <th scope="col" className="px-2 py-2">IP address</th>
              <th scope="col" className="px-2 py-2">Port</th>
              <th scope="col" className="px-2 py-2">Weight</th>
              <th scope="col" className="px-2 py-2">Priority</th>
              <th scope="col" className="px-2 py-2">Share of new connections</th>
              <th scope="col" className="px-2 py-2">Rule probability</th>
              <th scope="col" className="px-2 py-2">Mark</th>
              <th scope="col" className="px-2 py-2">State</th>
              <th scope="col" className="px-4 py-2 text-right">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {backends.length === 0 && (
              <tr>
                <td colSpan={10} className="px-4 py-8 text-center text-muted">
                  No backends: the farm answers nothing until one is added.
                </td>
              </tr>
            )}
            {backends.map((b) =>
              editing === b.mark ? (
                <EditRow key={b.mark} farm={farm} backend={b} onDone={() => setEditing(null)} onSaved={onSaved} display={(v) => tableRow({ ...b, ...v }, "sending")} />
              ) : (
                tableRow(b, saved.has(b.mark) ? "saved" : null)
              ),
            )}
          </tbody>
        </table>
      </ScrollRegion>
      {mayOperate && <AddBackendForm farm={farm} />}
    </div>
  );
}

function BackendActions({
  farm,
  backend: b,
  state,
  open,
  consequence,
  onEdit,
  compact,
}: {
  farm: string;
  backend: BackendView;
  state: string;
  open: number | null;
  consequence: string;
  onEdit: () => void;
  compact: boolean;
}) {
  const who = nameOf(b);
  return (
    <div className={`flex flex-wrap gap-1.5 ${compact ? "" : "justify-end"}`}>
      <Button size="sm" onClick={onEdit} aria-label={`Edit backend ${who}`}>
        Edit
      </Button>
      {state === "maintenance" ? (
        <ActionButton action={setMaintenanceAction} fields={{ farm, mark: b.markHex, mode: "off" }} size="sm" tone="primary" label={`Back in service: backend ${who}`} pendingText="Applying…">
          Back in service
        </ActionButton>
      ) : (
        <ActionButton action={setMaintenanceAction} fields={{ farm, mark: b.markHex, mode: "drain" }} size="sm" label={`Drain backend ${who}`} pendingText="Draining…">
          Drain
        </ActionButton>
      )}
      <ConfirmDialog
        trigger="Cut"
        triggerSize="sm"
        triggerTone="danger"
        triggerLabel={`Cut backend ${who}`}
        title={`Cut backend ${who}?`}
        confirm="Cut connections"
        confirmTone="danger"
        action={setMaintenanceAction}
        fields={{ farm, mark: b.markHex, mode: "cut" }}
      >
        <p>
          The backend goes into maintenance (no new connections) and <strong>every connection it holds now is ended</strong>
          {open !== null ? ` (${open} open right now)` : ""}: its conntrack entries (mark {b.markHex}) are deleted, so clients in the middle of a transfer lose it.
        </p>
        <p className="mt-2 text-muted">To let open connections finish instead, use Drain.</p>
      </ConfirmDialog>
      <ConfirmDialog
        trigger="Remove"
        triggerSize="sm"
        triggerTone="danger"
        triggerLabel={`Remove backend ${who}`}
        title={`Remove backend ${who}?`}
        confirm="Remove backend"
        confirmTone="danger"
        action={removeBackendAction}
        fields={{ farm, mark: b.markHex }}
      >
        <p>{consequence}</p>
        <p className="mt-2 text-muted">Its rules (mark {b.markHex}) leave the kernel. Connections it already holds keep their translation until they end.</p>
      </ConfirmDialog>
    </div>
  );
}

type Saved = (mark: number, form: FormData) => void;
type Stage = "sending" | "saved" | null;
type Display = (values: Partial<BackendView>) => ReactNode;

/** In a row being saved, where its share and actions are: the acknowledgement the toast also announces. */
function SavingNote({ stage }: { stage: "sending" | "saved" }) {
  return <span className="text-xs text-muted">{stage === "sending" ? "saving…" : "updating…"}</span>;
}

/**
 * The edit as sent, when the shared schema accepts it: what the row shows
 * and the toast says while the server applies it. Values it refuses get no
 * optimistic display (the server's field errors come back at once).
 */
function sentEdit(b: BackendView, form: FormData): { values: Partial<BackendView>; text: string } | null {
  if (!BackendSchema.safeParse(backendFromForm(form)).success) return null;
  const values = savedValues(form);
  const changes = (["ip", "port", "weight", "priority", "state"] as const)
    .filter((k) => k in values && values[k] !== b[k])
    .map((k) => `${k} ${b[k] ?? "client's"} → ${values[k] ?? "client's"}`);
  return { values, text: `Saving backend ${nameOf(b)}${changes.length ? `: ${changes.join(", ")}` : ""}…` };
}

/** What an applied edit changed, as the row shows it until the re-rendered page arrives. */
function savedValues(form: FormData): Partial<BackendView> {
  const text = (k: string) => {
    const v = form.get(k);
    return typeof v === "string" ? v.trim() : null;
  };
  const int = (k: string) => {
    const v = text(k);
    return v && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const out: Partial<BackendView> = {};
  const ip = text("ip");
  if (ip) out.ip = ip;
  const port = text("port");
  if (port === "") out.port = null;
  else if (port !== null && int("port") !== undefined) out.port = int("port")!;
  if (int("weight") !== undefined) out.weight = int("weight")!;
  if (int("priority") !== undefined) out.priority = int("priority")!;
  const state = text("state");
  if (state && (STATES as readonly string[]).includes(state)) out.state = state;
  return out;
}

/** Editing a backend on a phone: the same fields as the table's row, labelled and stacked. */
function EditForm({ farm, backend: b, onDone, onSaved, idPrefix, display }: { farm: string; backend: BackendView; onDone: () => void; onSaved: Saved; idPrefix: string; display: Display }) {
  const [state, action, pending, sent] = useToastedAction(updateBackendAction, IDLE, { onOk: (form) => onSaved(b.mark, form), saving: (form) => sentEdit(b, form)?.text ?? null });
  if (sent) return display(savedValues(sent));
  const e = state.errors;
  const v = state.status === "invalid" ? (state.values ?? {}) : {};
  const formId = `${idPrefix}-${b.mark}`;
  const who = `of backend ${nameOf(b)}`;
  const input = (name: string, label: string, value: string) => (
    <div>
      <label htmlFor={`${formId}-${name}`} className="mb-1 block text-xs font-medium text-muted">
        {label}
        <span className="sr-only"> {who}</span>
      </label>
      <input
        id={`${formId}-${name}`}
        name={name}
        defaultValue={value}
        autoComplete="off"
        aria-invalid={e[name]?.length ? true : undefined}
        aria-describedby={`${formId}-${name}-error`}
        className={`${inputClass} font-mono`}
      />
      <FieldError id={`${formId}-${name}-error`} errors={e[name]} />
    </div>
  );
  return (
    <form action={action} key={state.stamp} noValidate aria-label={`Edit backend ${nameOf(b)}`} className="space-y-2">
      <input type="hidden" name="farm" value={farm} />
      <input type="hidden" name="mark" value={b.markHex} />
      <div className="grid grid-cols-2 gap-2">
        {input("ip", "IP address", v.ip ?? b.ip)}
        {input("port", "Port", v.port ?? (b.port === null ? "" : String(b.port)))}
        {input("weight", "Weight", v.weight ?? String(b.weight))}
        {input("priority", "Priority", v.priority ?? String(b.priority))}
        <div>
          <label htmlFor={`${formId}-state`} className="mb-1 block text-xs font-medium text-muted">
            State<span className="sr-only"> {who}</span>
          </label>
          <select id={`${formId}-state`} name="state" defaultValue={v.state ?? b.state} className={inputClass}>
            {STATES.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </div>
      </div>
      <p className="text-xs text-muted" aria-live="polite">
        {e._form?.join(" ") ?? (state.status === "failed" ? state.message : "The mark stays: established connections keep their backend.")}
      </p>
      <div className="flex gap-1.5">
        <Button size="sm" tone="primary" type="submit" disabled={pending} aria-label={`Save backend ${nameOf(b)}`}>
          {pending ? "Saving…" : "Save"}
        </Button>
        <Button size="sm" onClick={onDone} aria-label={`Cancel editing backend ${nameOf(b)}`}>
          Cancel
        </Button>
      </div>
    </form>
  );
}

function EditRow({ farm, backend: b, onDone, onSaved, display }: { farm: string; backend: BackendView; onDone: () => void; onSaved: Saved; display: Display }) {
  const [state, action, pending, sent] = useToastedAction(updateBackendAction, IDLE, { onOk: (form) => onSaved(b.mark, form), saving: (form) => sentEdit(b, form)?.text ?? null });
  // Sent: the row shows the new values at once; a refusal brings this editor back with its errors.
  if (sent) return display(savedValues(sent));
  const e = state.errors;
  const v = state.status === "invalid" ? (state.values ?? {}) : {};
  const formId = `edit-backend-${b.mark}`;
  const who = `of backend ${b.ip}${b.port ? `:${b.port}` : ""}`;
  return (
    <tr className="border-b border-line bg-surface-2 align-top">
      <td className="px-4 py-2.5 font-mono text-xs text-muted">
        {b.position + 1}
        <form id={formId} action={action} key={state.stamp}>
          <input type="hidden" name="farm" value={farm} />
          <input type="hidden" name="mark" value={b.markHex} />
        </form>
      </td>
      <td className="px-2 py-2">
        <CellInput form={formId} name="ip" label={`IP address ${who}`} defaultValue={v.ip ?? b.ip} errors={e.ip} stamp={state.stamp} />
      </td>
      <td className="px-2 py-2">
        <CellInput form={formId} name="port" label={`Port ${who}`} defaultValue={v.port ?? (b.port === null ? "" : String(b.port))} errors={e.port} stamp={state.stamp} />
      </td>
      <td className="px-2 py-2">
        <CellInput form={formId} name="weight" label={`Weight ${who}`} defaultValue={v.weight ?? String(b.weight)} errors={e.weight} stamp={state.stamp} />
      </td>
      <td className="px-2 py-2">
        <CellInput form={formId} name="priority" label={`Priority ${who}`} defaultValue={v.priority ?? String(b.priority)} errors={e.priority} stamp={state.stamp} />
      </td>
      <td colSpan={3} className="px-2 py-2 text-xs text-muted" aria-live="polite">
        {e._form?.join(" ") ?? (state.status === "failed" ? state.message : "The mark stays: established connections keep their backend.")}
      </td>
      <td className="px-2 py-2">
        <label className="sr-only" htmlFor={`${formId}-state`}>
          State {who}
        </label>
        <select id={`${formId}-state`} form={formId} name="state" defaultValue={v.state ?? b.state} className={inputClass} key={state.stamp}>
          {STATES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </td>
      <td className="px-4 py-2">
        <div className="flex justify-end gap-1.5">
          <Button size="sm" tone="primary" type="submit" form={formId} disabled={pending} aria-label={`Save backend ${b.ip}${b.port ? `:${b.port}` : ""}`}>
            {pending ? "Saving…" : "Save"}
          </Button>
          <Button size="sm" onClick={onDone} aria-label={`Cancel editing backend ${b.ip}${b.port ? `:${b.port}` : ""}`}>
            Cancel
          </Button>
        </div>
      </td>
    </tr>
  );
}

function CellInput({ form, name, label, defaultValue, errors, stamp }: { form: string; name: string; label: string; defaultValue: string; errors?: string[]; stamp: number }) {
  const id = `${form}-${name}`;
  return (
    <div>
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <input
        key={stamp}
        id={id}
        form={form}
        name={name}
        defaultValue={defaultValue}
        autoComplete="off"
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={`${id}-error`}
        className={`${inputClass} font-mono`}
      />
      <FieldError id={`${id}-error`} errors={errors} />
    </div>
  );
}

function AddBackendForm({ farm }: { farm: string }) {
  const [formKey, setFormKey] = useState(0);
  const [state, action, pending] = useToastedAction(addBackendAction, IDLE, { onOk: () => setFormKey((k) => k + 1) });
  const e = state.errors;
  const v = state.status === "invalid" ? (state.values ?? {}) : {};
  const field = (name: string, label: string, placeholder?: string, def?: string) => {
    const id = `add-backend-${name}`;
    return (
      <div>
        <label htmlFor={id} className="mb-1 block text-xs font-medium text-muted">
          {label}
        </label>
        <input
          id={id}
          name={name}
          defaultValue={v[name] ?? def}
          placeholder={placeholder}
          autoComplete="off"
          aria-invalid={e[name]?.length ? true : undefined}
          aria-describedby={`${id}-error`}
          className={`${inputClass} font-mono`}
        />
        <FieldError id={`${id}-error`} errors={e[name]} />
      </div>
    );
  };
  return (
    <form action={action} key={`${state.stamp}-${formKey}`} aria-label="Add backend" noValidate className="border-t border-line p-4">
      <input type="hidden" name="farm" value={farm} />
      <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted">Add backend</h3>
      <div className="grid items-start gap-3 sm:grid-cols-[1fr_7rem_6rem_6rem_9rem_auto]">
        {field("ip", "IP address", "e.g. 203.0.113.12")}
        {field("port", "Port", "blank keeps the client's")}
        {field("weight", "Weight", "blank: 1 (1 to 100)", "1")}
        {field("priority", "Priority", "blank: 1 (1 to 9)", "1")}
        <div>
          <label htmlFor="add-backend-state" className="mb-1 block text-xs font-medium text-muted">
            State
          </label>
          <select id="add-backend-state" name="state" defaultValue={v.state ?? "up"} className={inputClass}>
            {STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        <Button type="submit" tone="primary" className="sm:mt-5" disabled={pending}>
          {pending ? "Adding…" : "Add backend"}
        </Button>
      </div>
      <p role="status" aria-live="polite" className="mt-1 text-sm text-bad">
        {state.status === "invalid" ? (e._form?.join(" ") ?? "") : state.status === "failed" ? state.message : ""}
      </p>
    </form>
  );
}
