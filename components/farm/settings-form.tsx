"use client";

import { useActionState, useId, useState } from "react";
import { updateFarmSettingsAction } from "@/lib/actions/farms";
import { IDLE } from "@/lib/actions/state";
import { Button } from "@/components/ui/button";
import { FieldError, SelectField, TextField } from "@/components/ui/field";
import { useActionToast } from "@/components/use-action-toast";

/**
 * The farm's own settings: address, ports, protocol, scheduler, persistence
 * and the health check. The server validates with the shared schema and
 * answers with field errors keyed by these inputs' names.
 */
export interface FarmSettings {
  vip: string;
  ports: string;
  protocol: string;
  scheduler: string;
  persistence: string;
  persistenceTtl: number;
  healthcheck: {
    type: string;
    interval: number;
    timeout: number;
    failures: number;
    passes: number;
    port?: number;
    path?: string;
    expectStatus?: number;
  } | null;
}

const SCHEDULERS = [
  { value: "weight", label: "Weight (random by weight)" },
  { value: "roundrobin", label: "Round robin (exact rotation)" },
  { value: "sourcehash", label: "Source hash (a client keeps its backend)" },
  { value: "priority", label: "Priority (best level only)" },
];

/**
 * The form is drawn afresh (a new key) after every result, after Reset and
 * whenever the saved settings change, and its boxes start from one source:
 * the values a refused save carried, or else the saved settings. So Reset
 * after a refused save shows the saved values, the health-check box and its
 * fields always agree, and a save shows what was saved without a reload.
 */
export function SettingsForm({ farm, settings }: { farm: string; settings: FarmSettings }) {
  const [state, action, pending] = useActionState(updateFarmSettingsAction, IDLE);
  useActionToast(state);
  // The result a Reset dismissed: its values and errors are no longer shown.
  const [dismissed, setDismissed] = useState<number | null>(null);
  const [resets, setResets] = useState(0);
  const shown = state.stamp !== dismissed;
  const key = `${state.stamp}-${resets}-${JSON.stringify(settings)}`;
  return (
    <SettingsFields
      key={key}
      farm={farm}
      settings={settings}
      action={action}
      pending={pending}
      state={shown ? state : IDLE}
      onReset={() => {
        setDismissed(state.stamp);
        setResets((n) => n + 1);
      }}
    />
  );
}

function SettingsFields({
  farm,
  settings,
  action,
  pending,
  state,
  onReset,
}: {
  farm: string;
  settings: FarmSettings;
  action: (form: FormData) => void;
  pending: boolean;
  state: typeof IDLE;
  onReset: () => void;
}) {
  const invalid = state.status === "invalid";
  const v = invalid ? (state.values ?? {}) : {};
  const e = state.errors;
  const hc = settings.healthcheck;
  const [enabled, setEnabled] = useState(invalid ? v["healthcheck.enabled"] === "on" : hc !== null);
  const [type, setType] = useState(invalid ? (v["healthcheck.type"] ?? "tcp") : (hc?.type ?? "tcp"));
  const [persistence, setPersistence] = useState(invalid ? (v.persistence ?? "none") : settings.persistence);
  const formStatus = useId();
  const str = (x: number | string | undefined) => (x === undefined ? "" : String(x));
  const val = (key: string, fallback: string) => v[key] ?? fallback;
  const hcDefaults = { interval: 5, timeout: 2, failures: 3, passes: 2 };

  return (
    <form action={action} noValidate aria-label={`Settings of ${farm}`} aria-describedby={formStatus} className="space-y-5 p-4">
      <input type="hidden" name="farm" value={farm} />
      <fieldset>
        <legend className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted">Service</legend>
        <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
          <TextField id="settings-vip" label="Virtual IP" name="vip" defaultValue={val("vip", settings.vip)} errors={e.vip} autoComplete="off" />
          <TextField id="settings-ports" label="Ports" name="ports" defaultValue={val("ports", settings.ports)} errors={e.ports} autoComplete="off" hint="443, 80,443, 8000:8100 or *" />
          <SelectField
            id="settings-protocol"
            label="Protocol"
            name="protocol"
            defaultValue={val("protocol", settings.protocol)}
            errors={e.protocol}
            options={["tcp", "udp", "sctp", "all"].map((p) => ({ value: p, label: p }))}
          />
          <SelectField id="settings-scheduler" label="Scheduler" name="scheduler" defaultValue={val("scheduler", settings.scheduler)} errors={e.scheduler} options={SCHEDULERS} />
        </div>
      </fieldset>

      <fieldset>
        <legend className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted">Persistence</legend>
        <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
          <SelectField
            id="settings-persistence"
            label="Persistence"
            name="persistence"
            value={persistence}
            onChange={(ev) => setPersistence(ev.target.value)}
            errors={e.persistence}
            options={[
              { value: "none", label: "None" },
              { value: "srcip", label: "Source IP (a client returns to its backend)" },
            ]}
          />
          <TextField
            id="settings-persistence-ttl"
            label="Persistence TTL (seconds)"
            name="persistenceTtl"
            inputMode="numeric"
            defaultValue={val("persistenceTtl", str(settings.persistenceTtl))}
            errors={e.persistenceTtl}
            disabled={persistence !== "srcip"}
            hint={persistence === "srcip" ? "How long after its last new connection a client keeps its backend." : "Used with source IP persistence."}
          />
        </div>
      </fieldset>

      <fieldset>
        <legend className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted">Health check</legend>
        <label className="inline-flex items-center gap-2 text-sm">
          <input
            type="checkbox"
            name="healthcheck.enabled"
            checked={enabled}
            onChange={(ev) => setEnabled(ev.target.checked)}
            className="h-4 w-4 accent-[var(--accent)]"
            aria-describedby="settings-hc-help"
          />
          Enable health check
        </label>
        <p id="settings-hc-help" className="mt-1 text-xs text-muted">
          {enabled
            ? "Each backend is probed from the load balancer; after the failures threshold it leaves the rule set, after the passes threshold it comes back."
            : "Without a health check every backend not in maintenance receives connections."}
        </p>
        {enabled && (
          <div className="mt-3 grid gap-3 sm:grid-cols-3 lg:grid-cols-6">
            <SelectField
              id="settings-hc-type"
              label="Check type"
              name="healthcheck.type"
              value={type}
              onChange={(ev) => setType(ev.target.value)}
              errors={e["healthcheck.type"]}
              options={[
                { value: "tcp", label: "TCP connect" },
                { value: "udp", label: "UDP answer" },
                { value: "http", label: "HTTP GET" },
              ]}
            />
            <TextField id="settings-hc-interval" label="Interval (s)" name="healthcheck.interval" inputMode="numeric" defaultValue={val("healthcheck.interval", str(hc?.interval ?? hcDefaults.interval))} errors={e["healthcheck.interval"]} />
            <TextField id="settings-hc-timeout" label="Timeout (s)" name="healthcheck.timeout" inputMode="numeric" defaultValue={val("healthcheck.timeout", str(hc?.timeout ?? hcDefaults.timeout))} errors={e["healthcheck.timeout"]} />
            <TextField id="settings-hc-failures" label="Failures before down" name="healthcheck.failures" inputMode="numeric" defaultValue={val("healthcheck.failures", str(hc?.failures ?? hcDefaults.failures))} errors={e["healthcheck.failures"]} />
            <TextField id="settings-hc-passes" label="Passes before up" name="healthcheck.passes" inputMode="numeric" defaultValue={val("healthcheck.passes", str(hc?.passes ?? hcDefaults.passes))} errors={e["healthcheck.passes"]} />
            <TextField id="settings-hc-port" label="Check port" name="healthcheck.port" inputMode="numeric" placeholder="blank: the backend's" defaultValue={val("healthcheck.port", str(hc?.port))} errors={e["healthcheck.port"]} />
            {type === "http" && (
              <>
                <TextField id="settings-hc-path" label="HTTP path" name="healthcheck.path" placeholder="blank: /" defaultValue={val("healthcheck.path", hc?.path ?? "/")} errors={e["healthcheck.path"]} className="sm:col-span-2" />
                <TextField
                  id="settings-hc-status"
                  label="Expected status"
                  name="healthcheck.expectStatus"
                  inputMode="numeric"
                  placeholder="blank: 200"
                  defaultValue={val("healthcheck.expectStatus", str(hc?.expectStatus ?? 200))}
                  errors={e["healthcheck.expectStatus"]}
                />
              </>
            )}
          </div>
        )}
        <FieldError id="settings-hc-error" errors={e.healthcheck} />
      </fieldset>

      <div className="flex flex-wrap items-center gap-3 border-t border-line pt-3">
        <Button type="submit" tone="primary" disabled={pending}>
          {pending ? "Saving…" : "Save settings"}
        </Button>
        <Button onClick={onReset} disabled={pending}>
          Reset
        </Button>
        <p id={formStatus} role="status" aria-live="polite" className="text-sm text-bad">
          {invalid ? (e._form?.join(" ") ?? state.message) : state.status === "failed" ? state.message : ""}
        </p>
      </div>
    </form>
  );
}
