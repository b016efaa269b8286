"use server";

import { refreshFarmPages as refresh } from "./revalidate";
import { z } from "zod";
import { BackendSchema } from "@/lib/farms/schema";
import { fieldErrors } from "@/lib/farms/errors";
import { parseMark } from "@/lib/farms/marks";
import { farmService } from "@/lib/console/farm-service";
import type { MutationResult } from "@/lib/console/farm-service-core";
import { backendFromForm, formValues } from "@/lib/console/form-data";
import type { ActionState } from "./state";

/**
 * Backend mutations. A backend is addressed by its mark: unique across all
 * farms and fixed for the backend's life, unlike its position or address.
 * Errors come back keyed by the backend field (`ip`, `port`, `weight`).
 */
const FarmName = z.string().trim().min(1).max(64);

function toState(r: MutationResult, values?: Record<string, string>): ActionState {
  const stamp = Date.now();
  if (r.ok) return { status: "ok", message: r.message, errors: {}, farm: r.farm, stamp };
  if (r.reason === "apply-failed") return { status: "failed", message: r.message, errors: {}, iptables: r.iptables, farm: r.farm, stamp };
  // The service reports on the whole farm: `backends.<k>.weight` → `weight`.
  const errors: Record<string, string[]> = {};
  for (const [key, messages] of Object.entries(r.errors ?? { _form: [r.message] })) {
    const field = /^backends\.\d+\.(\w+)$/.exec(key)?.[1] ?? (key.startsWith("backends") ? "_form" : key);
    (errors[field] ??= []).push(...messages);
  }
  return { status: "invalid", message: r.message, errors, values, stamp };
}


function invalid(errors: Record<string, string[]>, values: Record<string, string>): ActionState {
  return { status: "invalid", message: "The backend was not saved: fix the highlighted fields.", errors, values, stamp: Date.now() };
}

export async function addBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const values = formValues(form);
  const backend = backendFromForm(form);
  const alone = BackendSchema.safeParse(backend);
  if (!alone.success) return invalid(fieldErrors(alone.error), values);
  const r = await (await farmService()).addBackend(name, backend);
  refresh(name);
  return toState(r, values);
}

export async function updateBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const mark = parseMark(form.get("mark"));
  const values = formValues(form);
  if (mark === null) return invalid({ _form: ["unknown backend"] }, values);
  const backend = backendFromForm(form);
  const alone = BackendSchema.safeParse(backend);
  if (!alone.success) return invalid(fieldErrors(alone.error), values);
  const r = await (await farmService()).updateBackend(name, mark, backend);
  refresh(name);
  return toState(r, values);
}

export async function removeBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const mark = parseMark(form.get("mark"));
  if (mark === null) return invalid({ _form: ["unknown backend"] }, {});
  const r = await (await farmService()).removeBackend(name, mark);
  refresh(name);
  return toState(r);
}

const MaintenanceMode = z.enum(["drain", "cut", "off"]);

/**
 * Maintenance: "drain" takes the backend out of the rule set for new
 * connections and lets open ones finish; "cut" also ends the open ones;
 * "off" puts it back in service.
 */
export async function setMaintenanceAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const name = FarmName.parse(form.get("farm"));
  const mark = parseMark(form.get("mark"));
  const mode = MaintenanceMode.safeParse(form.get("mode"));
  if (mark === null || !mode.success) return invalid({ _form: ["unknown backend or maintenance mode"] }, {});
  const r = await (await farmService()).setMaintenance(name, mark, mode.data);
  refresh(name);
  return toState(r);
}
