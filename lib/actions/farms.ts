"use server";

import { refreshFarmPages as refresh } from "./revalidate";
import { redirect } from "next/navigation";
import { z } from "zod";
import { MODES, FARM_STATUSES, FarmSchema } from "@/lib/farms/schema";
import { fieldErrors } from "@/lib/farms/errors";
import { farmService } from "@/lib/console/farm-service";
import type { MutationResult } from "@/lib/console/farm-service-core";
import { errorsToRows, farmFromForm, formValues, settingsFromForm } from "@/lib/console/form-data";
import { GUIDE_EXAMPLE } from "@/lib/console/guide-example";
import type { ActionState } from "./state";

/**
 * Farm mutations. Each validates with the shared schema (the service checks
 * the whole resulting farm set), writes the database, applies only the
 * affected farm and returns an ActionState; a failed apply comes back as
 * "failed" with iptables' own message, never as success.
 */
function toState(r: MutationResult, values?: Record<string, string>): ActionState {
  const stamp = Date.now();
  if (r.ok) return { status: "ok", message: r.message, errors: {}, farm: r.farm, stamp };
  if (r.reason === "apply-failed") return { status: "failed", message: r.message, errors: {}, iptables: r.iptables, farm: r.farm, stamp };
  return { status: "invalid", message: r.message, errors: r.errors ?? { _form: [r.message] }, values, stamp };
}


const FarmName = z.string().trim().min(1).max(64);

export async function createFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const { farm, rowOf } = farmFromForm(form);
  const values = formValues(form);
  // The single-farm schema first: its field errors need no other farm to be read.
  const alone = FarmSchema.safeParse(farm);
  if (!alone.success) {
    return {
      status: "invalid",
      message: "The farm was not saved: fix the highlighted fields.",
      errors: errorsToRows(fieldErrors(alone.error), rowOf),
      values,
      stamp: Date.now(),
    };
  }
  const r = await (await farmService()).createFarm(farm);
  if (!r.ok && r.reason === "invalid") return { ...toState(r, values), errors: errorsToRows(r.errors, rowOf) };
  refresh(farm.name);
  return toState(r, values);
}

export async function createGuideExampleAction(_prev: ActionState): Promise<ActionState> {
  const service = await farmService();
  if (await service.getFarm(GUIDE_EXAMPLE.name)) {
    const message = `The guide's farm "${GUIDE_EXAMPLE.name}" already exists.`;
    return { status: "invalid", message, errors: { _form: [message] }, stamp: Date.now() };
  }
  const r = await service.createFarm(GUIDE_EXAMPLE);
  refresh(GUIDE_EXAMPLE.name);
  return toState(r);
}

export async function setModeAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const mode = z.enum(MODES).safeParse(form.get("mode"));
  if (!mode.success) return { status: "invalid", message: 'mode must be "nat" or "dnat"', errors: { mode: ['mode must be "nat" or "dnat"'] }, stamp: Date.now() };
  const r = await (await farmService()).setMode(name, mode.data);
  refresh(name);
  return toState(r);
}

export async function setStatusAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const status = z.enum(FARM_STATUSES).safeParse(form.get("status"));
  if (!status.success) return { status: "invalid", message: 'status must be "up" or "stopped"', errors: {}, stamp: Date.now() };
  const r = await (await farmService()).setStatus(name, status.data);
  refresh(name);
  return toState(r);
}

export async function updateFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const values = formValues(form);
  const patch = {
    vip: String(form.get("vip") ?? ""),
    ports: String(form.get("ports") ?? ""),
    protocol: String(form.get("protocol") ?? "") as "tcp",
  };
  const r = await (await farmService()).updateFarm(name, patch);
  refresh(name);
  return toState(r, values);
}

/**
 * The farm page's Settings form: VIP, ports, protocol, scheduler, persistence
 * and the health check. The service validates the whole resulting farm (and
 * the farm set) with the shared schema; errors come back keyed by the form's
 * field names (`healthcheck.timeout`). A setting that makes a backend invalid
 * (a health check with no port to probe) is reported on the form, naming it.
 */
export async function updateFarmSettingsAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const values = formValues(form);
  const service = await farmService();
  const r = await service.updateFarm(name, settingsFromForm(form), "settings");
  if (!r.ok && r.reason === "invalid") {
    const row = await service.getFarm(name);
    const errors: Record<string, string[]> = {};
    for (const [key, messages] of Object.entries(r.errors)) {
      const m = /^backends\.(\d+)\.?(.*)$/.exec(key);
      if (!m) {
        (errors[key] ??= []).push(...messages);
        continue;
      }
      const b = row?.backends[Number(m[1])];
      const who = b ? `backend ${b.ip}${b.port ? `:${b.port}` : ""}` : `backend ${Number(m[1]) + 1}`;
      (errors._form ??= []).push(...messages.map((msg) => `${who}${m[2] ? ` (${m[2]})` : ""}: ${msg}`));
    }
    return { status: "invalid", message: r.message, errors, values, stamp: Date.now() };
  }
  refresh(name);
  return toState(r, values);
}

/** Makes the kernel hold exactly the database's farms (every farm, one transaction per table). */
export async function applyAllAction(_prev: ActionState): Promise<ActionState> {
  const r = await (await farmService()).applyAll();
  refresh();
  return toState(r);
}

export async function reapplyAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const r = await (await farmService()).reapply(name);
  refresh(name);
  return toState(r);
}

export async function deleteFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const r = await (await farmService()).deleteFarm(name);
  refresh(name);
  if (r.ok) redirect(`/?deleted=${encodeURIComponent(name)}`);
  return toState(r);
}
