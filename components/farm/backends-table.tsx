"use client";

import { useCan } from "@/components/auth/role";
import { useActionState, useCallback, useState } from "react";
import { addBackendAction, removeBackendAction, setMaintenanceAction, updateBackendAction } from "@/lib/actions/backends";
import { IDLE } from "@/lib/actions/state";
import type { BackendView } from "@/lib/console/farm-view";
import { ActionButton } from "@/components/ui/action-button";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useFarmLive } from "./farm-live";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { FieldError, inputClass } from "@/components/ui/field";
import { useActionToast } from "@/components/use-action-toast";

const STATES = ["up", "down", "maintenance"] as const;

function percent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function when(iso: string): string {
  const d = new Date(iso);
  const age = (Date.now() - d.getTime()) / 1000;
  return age < 86_400 ? d.toLocaleTimeString() : d.toLocaleString();
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
              {at && <time dateTime={at}> · {when(at)}</time>}
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

export function BackendsTable({ farm, backends, hasCheck = false }: { farm: string; backends: BackendView[]; hasCheck?: boolean }) {
  const [editing, setEditing] = useState<number | null>(null);
  const { live } = useFarmLive();
  const mayOperate = useCan("operate");
  return (
    <div>
      <div className="overflow-x-auto">
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
            {backends.map((b) => {
              const who = `${b.ip}${b.port ? `:${b.port}` : ""}`;
              const state = live?.backends.find((x) => x.mark === b.mark)?.state ?? b.state;
              return editing === b.mark ? (
                <EditRow key={b.mark} farm={farm} backend={b} onDone={() => setEditing(null)} />
              ) : (
                <tr key={b.mark} className="border-b border-line last:border-0">
                  <td className="px-4 py-2.5 font-mono text-xs text-muted">{b.position}</td>
                  <td className="px-2 py-2.5 font-mono">{b.ip}</td>
                  <td className="px-2 py-2.5 font-mono">{b.port ?? <span className="text-muted">client's</span>}</td>
                  <td className="px-2 py-2.5 tabular-nums">{b.weight}</td>
                  <td className="px-2 py-2.5 tabular-nums">{b.priority}</td>
                  <td className="px-2 py-2.5">
                    <div className="flex items-center gap-2">
                      <div aria-hidden="true" className="h-2 w-28 overflow-hidden rounded-full bg-surface-2">
                        <div className="h-full rounded-full bg-accent" style={{ width: `${b.share * 100}%` }} />
                      </div>
                      <span className="tabular-nums">{percent(b.share)}</span>
                    </div>
                  </td>
                  <td className="px-2 py-2.5 font-mono text-xs">{b.probability ?? <span className="text-muted">no rule</span>}</td>
                  <td className="px-2 py-2.5 font-mono text-xs">{b.markHex}</td>
                  <td className="px-2 py-2.5">
                    <BackendState backend={b} hasCheck={hasCheck} />
                  </td>
                  <td className="px-4 py-2.5">
                    {mayOperate && (
                    <div className="flex justify-end gap-1.5">
                      <Button size="sm" onClick={() => setEditing(b.mark)} aria-label={`Edit backend ${b.ip}${b.port ? `:${b.port}` : ""}`}>
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
                          The backend goes into maintenance (no new connections) and <strong>every connection it holds now is ended</strong>: its
                          conntrack entries (mark {b.markHex}) are deleted, so clients in the middle of a transfer lose it.
                        </p>
                        <p className="mt-2 text-muted">To let open connections finish instead, use Drain.</p>
                      </ConfirmDialog>
                      <ConfirmDialog
                        trigger="Remove"
                        triggerSize="sm"
                        triggerTone="danger"
                        triggerLabel={`Remove backend ${b.ip}${b.port ? `:${b.port}` : ""}`}
                        title={`Remove backend ${b.ip}${b.port ? `:${b.port}` : ""}?`}
                        confirm="Remove backend"
                        confirmTone="danger"
                        action={removeBackendAction}
                        fields={{ farm, mark: b.markHex }}
                      >
                        <p>
                          Its rules (mark {b.markHex}) leave the kernel and the other backends share its {percent(b.share)} of new
                          connections. Connections it already holds keep their translation until they end.
                        </p>
                      </ConfirmDialog>
                    </div>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {mayOperate && <AddBackendForm farm={farm} />}
    </div>
  );
}

function EditRow({ farm, backend: b, onDone }: { farm: string; backend: BackendView; onDone: () => void }) {
  const [state, action, pending] = useActionState(updateBackendAction, IDLE);
  useActionToast(state, { onOk: onDone });
  const e = state.errors;
  const v = state.status === "invalid" ? (state.values ?? {}) : {};
  const formId = `edit-backend-${b.mark}`;
  const who = `of backend ${b.ip}${b.port ? `:${b.port}` : ""}`;
  return (
    <tr className="border-b border-line bg-surface-2 align-top">
      <td className="px-4 py-2.5 font-mono text-xs text-muted">
        {b.position}
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
  const [state, action, pending] = useActionState(addBackendAction, IDLE);
  const [formKey, setFormKey] = useState(0);
  const onOk = useCallback(() => setFormKey((k) => k + 1), []);
  useActionToast(state, { onOk });
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
        {field("ip", "IP address", "203.0.113.12")}
        {field("port", "Port", "blank: client's port")}
        {field("weight", "Weight", "1..100", "1")}
        {field("priority", "Priority", "1..9", "1")}
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
