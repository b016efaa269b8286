"use client";

import { useActionState, useCallback, useState } from "react";
import { addBackendAction, removeBackendAction, updateBackendAction } from "@/lib/actions/backends";
import { IDLE } from "@/lib/actions/state";
import type { BackendView } from "@/lib/console/farm-view";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { FieldError, inputClass } from "@/components/ui/field";
import { useActionToast } from "@/components/use-action-toast";

const STATES = ["up", "down", "maintenance"] as const;

function percent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

export function BackendsTable({ farm, backends }: { farm: string; backends: BackendView[] }) {
  const [editing, setEditing] = useState<number | null>(null);
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
                <td colSpan={9} className="px-4 py-8 text-center text-muted">
                  No backends: the farm answers nothing until one is added.
                </td>
              </tr>
            )}
            {backends.map((b) =>
              editing === b.mark ? (
                <EditRow key={b.mark} farm={farm} backend={b} onDone={() => setEditing(null)} />
              ) : (
                <tr key={b.mark} className="border-b border-line last:border-0">
                  <td className="px-4 py-2.5 font-mono text-xs text-muted">{b.position}</td>
                  <td className="px-2 py-2.5 font-mono">{b.ip}</td>
                  <td className="px-2 py-2.5 font-mono">{b.port ?? <span className="text-muted">client's</span>}</td>
                  <td className="px-2 py-2.5 tabular-nums">{b.weight}</td>
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
                    <Badge tone={b.state === "up" ? "ok" : b.state === "down" ? "bad" : "warn"}>{b.state}</Badge>
                  </td>
                  <td className="px-4 py-2.5">
                    <div className="flex justify-end gap-1.5">
                      <Button size="sm" onClick={() => setEditing(b.mark)} aria-label={`Edit backend ${b.ip}${b.port ? `:${b.port}` : ""}`}>
                        Edit
                      </Button>
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
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      </div>
      <AddBackendForm farm={farm} />
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
      <div className="grid items-start gap-3 sm:grid-cols-[1fr_7rem_6rem_9rem_auto]">
        {field("ip", "IP address", "203.0.113.12")}
        {field("port", "Port", "blank: client's port")}
        {field("weight", "Weight", "1..100", "1")}
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
