"use client";

import { useCan } from "@/components/auth/role";
import { useActionState, useEffect, useRef, useState } from "react";
import { toast } from "sonner";
import { runLabTestAction, type LabActionState } from "@/lib/actions/lab";
import { Button } from "@/components/ui/button";
import { FieldError, inputClass } from "@/components/ui/field";
import { ScrollRegion } from "@/components/ui/scroll-region";

const IDLE: LabActionState = { status: "idle", message: "", errors: {}, stamp: 0 };

interface LabFarm {
  name: string;
  vip: string;
  ports: string;
  protocol: string;
  mode: string;
  problem: string | null;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function LabRunner({ farms, ports }: { farms: LabFarm[]; ports: number[] }) {
  const [state, action, pending] = useActionState(runLabTestAction, IDLE);
  const seen = useRef(0);
  useEffect(() => {
    if (state.stamp === seen.current) return;
    seen.current = state.stamp;
    if (state.status === "failed") toast.error(state.message);
  }, [state]);
  const mayOperate = useCan("operate");
  const testable = farms.filter((f) => !f.problem);
  const r = state.result;
  // A field's error stands until the field is changed: then it is no longer what was refused.
  const [edited, setEdited] = useState<{ stamp: number; fields: string[] }>({ stamp: 0, fields: [] });
  const errorOf = (field: string) => (edited.stamp === state.stamp && edited.fields.includes(field) ? undefined : state.errors[field]);
  const touch = (field: string) => setEdited((e) => ({ stamp: state.stamp, fields: e.stamp === state.stamp ? [...e.fields, field] : [field] }));
  const stillInvalid = Object.keys(state.errors).some((f) => errorOf(f));
  const typed = state.status === "invalid" ? state.values : undefined;
  if (!mayOperate) return <p className="p-4 text-sm text-muted">Running lab traffic needs the operator role.</p>;

  return (
    <div>
      <form action={action} key={state.stamp} className="flex flex-wrap items-start gap-3 p-4" noValidate>
        <div className="min-w-[14rem] flex-1">
          <label htmlFor="lab-farm" className="mb-1 block text-xs font-medium text-muted">
            Farm
          </label>
          <select
            id="lab-farm"
            name="farm"
            className={inputClass}
            defaultValue={typed?.farm || r?.farm || testable[0]?.name || ""}
            onChange={() => touch("farm")}
            aria-describedby="lab-farm-error lab-farm-hint"
            aria-invalid={errorOf("farm") ? true : undefined}
          >
            {farms.length === 0 && <option value="">No farms yet</option>}
            {farms.map((f) => (
              <option key={f.name} value={f.name} disabled={Boolean(f.problem)}>
                {f.name} — {f.vip}:{f.ports} {f.protocol} {f.mode.toUpperCase()}
                {f.problem ? ` (not testable: ${f.problem})` : ""}
              </option>
            ))}
          </select>
          <p id="lab-farm-hint" className="mt-1 text-xs text-muted">
            Testable: VIPs in 198.51.100.0/24, tcp or udp, backends 203.0.113.10+ on a port the lab's servers listen on ({ports.join(", ") || "—"}).
          </p>
          <FieldError id="lab-farm-error" errors={errorOf("farm")} />
        </div>
        <div className="w-36">
          <label htmlFor="lab-connections" className="mb-1 block text-xs font-medium text-muted">
            Connections
          </label>
          <input
            id="lab-connections"
            name="connections"
            type="number"
            min={1}
            max={5000}
            defaultValue={typed?.connections ?? r?.connections ?? 300}
            onChange={() => touch("connections")}
            className={inputClass}
            aria-describedby="lab-connections-error"
            aria-invalid={errorOf("connections") ? true : undefined}
          />
          <FieldError id="lab-connections-error" errors={errorOf("connections")} />
        </div>
        <Button type="submit" tone="primary" className="mt-5" disabled={pending || testable.length === 0}>
          {pending ? "Sending…" : "Send connections"}
        </Button>
      </form>

      <div aria-live="polite" className="border-t border-line">
        {state.status === "failed" || (state.status === "invalid" && stillInvalid) ? (
          <p className="p-4 text-sm text-bad" role="alert">
            {state.message}
          </p>
        ) : null}
        {r && (
          <div className="p-4">
            <p className="mb-3 text-sm">
              <strong>
                {r.ok} of {r.connections}
              </strong>{" "}
              {r.protocol} connections to{" "}
              <span className="font-mono">
                {r.vip}:{r.port}
              </span>{" "}
              answered in {(r.durationMs / 1000).toFixed(1)} s{r.failed ? `, ${r.failed} failed` : ""}.
            </p>
            <ScrollRegion label={`Lab results for ${r.farm}, table`}>
              <table className="w-full min-w-[40rem] text-sm" aria-label={`Lab results for ${r.farm}`}>
                <thead>
                  <tr className="border-b border-line text-left text-xs uppercase tracking-wide text-muted">
                    <th scope="col" className="py-2 pr-2">Backend</th>
                    <th scope="col" className="px-2 py-2">Weight</th>
                    <th scope="col" className="px-2 py-2">Expected</th>
                    <th scope="col" className="px-2 py-2">Observed</th>
                    <th scope="col" className="px-2 py-2">Connections</th>
                    <th scope="col" className="px-2 py-2">Source the backend saw</th>
                  </tr>
                </thead>
                <tbody>
                  {r.backends.map((b) => (
                    <tr key={b.mark} className="border-b border-line last:border-0">
                      <td className="py-2 pr-2 font-mono">
                        {b.ip}
                        {b.port ? `:${b.port}` : ""}
                        {b.state !== "up" && <span className="ml-1 text-xs text-muted">({b.state})</span>}
                      </td>
                      <td className="px-2 py-2 tabular-nums">{b.weight}</td>
                      <td className="px-2 py-2 tabular-nums">{pct(b.expected)}</td>
                      <td className="px-2 py-2">
                        <div className="flex items-center gap-2">
                          <div aria-hidden="true" className="relative h-2 w-28 rounded-full bg-surface-2">
                            <div className="h-full rounded-full bg-accent" style={{ width: `${Math.min(1, b.observed) * 100}%` }} />
                            <div className="absolute -top-0.5 h-3 w-0.5 bg-fg" style={{ left: `${b.expected * 100}%` }} title="expected" />
                          </div>
                          <span className="tabular-nums">{pct(b.observed)}</span>
                        </div>
                      </td>
                      <td className="px-2 py-2 tabular-nums">{b.count}</td>
                      <td className="px-2 py-2 font-mono text-xs">{b.peers.length ? b.peers.map((p) => `${p.address} (${p.count})`).join(", ") : "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
            {r.strangers.length > 0 && (
              <p className="mt-2 text-xs text-warn">Also answered by lab backends outside this farm: {r.strangers.map((s) => `${s.name} (${s.count})`).join(", ")}.</p>
            )}
            {r.errors.length > 0 && <p className="mt-2 text-xs text-bad">Errors: {r.errors.map((e) => `${e.message} ×${e.count}`).join(", ")}</p>}
            <p className="mt-3 text-xs text-muted">
              In DNAT mode backends see the client (198.51.100.2); in NAT mode they see the VIP. Expected shares are the weights after the kernel rounds each probability to 31 bits.
            </p>
          </div>
        )}
      </div>
    </div>
  );
}
