"use client";

import { useActionState, useCallback, useId, useState } from "react";
import { createFarmAction } from "@/lib/actions/farms";
import { IDLE } from "@/lib/actions/state";
import { Button } from "@/components/ui/button";
import { FieldError, SelectField, TextField, inputClass } from "@/components/ui/field";
import { useActionToast } from "@/components/use-action-toast";

/**
 * New farm: the farm's fields and any number of backend rows. Errors come
 * from the shared schema on the server, keyed by the input's own name.
 */
export function CreateFarmForm({ onDone }: { onDone?: () => void }) {
  const [state, action, pending] = useActionState(createFarmAction, IDLE);
  const [rows, setRows] = useState<number[]>([0]);
  const [nextRow, setNextRow] = useState(1);
  const onOk = useCallback(() => {
    setRows([0]);
    onDone?.();
  }, [onDone]);
  useActionToast(state, { onOk });
  const v = state.status === "invalid" ? (state.values ?? {}) : {};
  const e = state.errors;
  const formError = useId();

  return (
    <form action={action} key={state.stamp} aria-describedby={formError} noValidate className="space-y-4 p-4">
      <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-5">
        <TextField label="Name" name="name" defaultValue={v.name} errors={e.name} placeholder="e.g. web" autoComplete="off" required />
        <TextField label="Virtual IP" name="vip" defaultValue={v.vip} errors={e.vip} placeholder="e.g. 198.51.100.250" autoComplete="off" required />
        <TextField label="Ports" name="ports" defaultValue={v.ports} errors={e.ports} placeholder="e.g. 443, 80,443 or 8000:8100" autoComplete="off" required />
        <SelectField
          label="Protocol"
          name="protocol"
          defaultValue={v.protocol ?? "tcp"}
          errors={e.protocol}
          options={["tcp", "udp", "sctp", "all"].map((p) => ({ value: p, label: p }))}
        />
        <SelectField
          label="NAT type"
          name="mode"
          defaultValue={v.mode ?? "dnat"}
          errors={e.mode}
          options={[
            { value: "dnat", label: "DNAT (backends see the client)" },
            { value: "nat", label: "NAT (SNAT to the VIP)" },
          ]}
        />
      </div>

      <fieldset>
        <legend className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted">Backends</legend>
        <div className="space-y-2">
          {rows.map((id, i) => (
            <div key={id} className="grid grid-cols-[minmax(0,22rem)_7rem_7rem_auto] items-start gap-2" role="group" aria-label={`Backend ${i + 1}`}>
              <BackendInput label="IP address" name={`backends.${i}.ip`} value={v[`backends.${i}.ip`]} errors={e[`backends.${i}.ip`]} placeholder="e.g. 203.0.113.10" index={i} />
              <BackendInput label="Port" name={`backends.${i}.port`} value={v[`backends.${i}.port`]} errors={e[`backends.${i}.port`]} placeholder="e.g. 443" index={i} inputMode="numeric" />
              <BackendInput label="Weight" name={`backends.${i}.weight`} value={v[`backends.${i}.weight`] ?? "1"} errors={e[`backends.${i}.weight`]} index={i} inputMode="numeric" />
              <Button
                size="sm"
                tone="ghost"
                className="mt-5"
                aria-label={`Remove backend row ${i + 1}`}
                onClick={() => setRows((r) => r.filter((x) => x !== id))}
              >
                Remove
              </Button>
              {(e[`backends.${i}.mark`] || e[`backends.${i}`]) && (
                <FieldError id={`backend-${i}-other-error`} errors={[...(e[`backends.${i}.mark`] ?? []), ...(e[`backends.${i}`] ?? [])]} />
              )}
            </div>
          ))}
        </div>
        <Button
          size="sm"
          className="mt-2"
          onClick={() => {
            setRows((r) => [...r, nextRow]);
            setNextRow((n) => n + 1);
          }}
        >
          Add backend row
        </Button>
        <FieldError id="backends-error" errors={e.backends} />
      </fieldset>

      <div className="flex flex-wrap items-center gap-3 border-t border-line pt-3">
        <Button type="submit" tone="primary" disabled={pending}>
          {pending ? "Creating…" : "Create farm"}
        </Button>
        <p id={formError} role="status" aria-live="polite" className={`text-sm ${state.status === "ok" ? "text-ok" : "text-bad"}`}>
          {state.status === "invalid" ? (e._form?.join(" ") ?? state.message) : state.status === "failed" ? state.message : ""}
        </p>
      </div>
    </form>
  );
}

function BackendInput({
  label,
  name,
  value,
  errors,
  index,
  placeholder,
  inputMode,
}: {
  label: string;
  name: string;
  value?: string;
  errors?: string[];
  index: number;
  placeholder?: string;
  inputMode?: "numeric";
}) {
  const id = `f-${name.replace(/\W/g, "-")}`;
  return (
    <div>
      <label htmlFor={id} className="mb-1 block text-xs font-medium text-muted">
        {label}
        <span className="sr-only"> of backend {index + 1}</span>
      </label>
      <input
        id={id}
        name={name}
        defaultValue={value}
        placeholder={placeholder}
        inputMode={inputMode}
        autoComplete="off"
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={`${id}-error`}
        className={inputClass}
      />
      <FieldError id={`${id}-error`} errors={errors} />
    </div>
  );
}
