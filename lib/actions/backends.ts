"use server";

import { refreshFarmPages as refresh } from "./revalidate";
import { z } from "zod";
import { BackendSchema } from "@/lib/farms/schema";
import { fieldErrors } from "@/lib/farms/errors";
import { actionState, choice, FarmField, MarkField, parseForm } from "@/lib/console/action-input";
import { farmService } from "@/lib/console/farm-service";
import type { MutationResult } from "@/lib/console/farm-service-core";
import { backendFromForm, formValues } from "@/lib/console/form-data";
import type { ActionState } from "./state";

/**
 * Backend mutations. A backend is addressed by its mark: unique across all
 * farms and fixed for the backend's life, unlike its position or address.
 * Each parses its form with safeParse first (a missing or malformed farm,
 * mark or mode is an "invalid" state naming the field, nothing changed).
 * Errors come back keyed by the backend field (`ip`, `port`, `weight`).
 */
const FarmRef = z.object({ farm: FarmField });
const BackendRef = FarmRef.extend({ mark: MarkField });
/** The fields the backend forms have an input for. */
const BACKEND_FIELDS = new Set(["ip", "port", "weight", "priority", "state"]);

function toState(r: MutationResult, values?: Record<string, string>): ActionState {
  const stamp = Date.now();
  if (r.ok || r.reason === "apply-failed") return actionState(r, values);
  // The service reports on the whole farm: `backends.<k>.weight` → `weight`; what the backend
  // forms have no input for (a mark, a farm-level field) goes to `_form`, which they show.
  const errors: Record<string, string[]> = {};
  for (const [key, messages] of Object.entries(r.errors ?? { _form: [r.message] })) {
    const sub = /^backends\.\d+\.(\w+)$/.exec(key)?.[1];
    const field = sub && BACKEND_FIELDS.has(sub) ? sub : "_form";
    (errors[field] ??= []).push(...(field === "_form" && key !== "_form" ? messages.map((m) => `${sub ?? key}: ${m}`) : messages));
  }
  return { status: "invalid", message: r.message, errors, values, stamp };
}


function invalid(errors: Record<string, string[]>, values: Record<string, string>): ActionState {
  return { status: "invalid", message: "The backend was not saved: fix the highlighted fields.", errors, values, stamp: Date.now() };
}

export async function addBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const input = parseForm(FarmRef, form);
  if (!input.ok) return input.state;
  const name = input.data.farm;
  const values = formValues(form);
  const backend = backendFromForm(form);
  const alone = BackendSchema.safeParse(backend);
  if (!alone.success) return invalid(fieldErrors(alone.error), values);
  const r = await (await farmService()).addBackend(name, backend);
  refresh(name);
  return toState(r, values);
}

export async function updateBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const input = parseForm(BackendRef, form);
  if (!input.ok) return input.state;
  const { farm: name, mark } = input.data;
  const values = formValues(form);
  const backend = backendFromForm(form);
  const alone = BackendSchema.safeParse(backend);
  if (!alone.success) return invalid(fieldErrors(alone.error), values);
  const r = await (await farmService()).updateBackend(name, mark, backend);
  refresh(name);
  return toState(r, values);
}

export async function removeBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const input = parseForm(BackendRef, form);
  if (!input.ok) return input.state;
  const { farm: name, mark } = input.data;
  const r = await (await farmService()).removeBackend(name, mark);
  refresh(name);
  return toState(r);
}

const MAINTENANCE_MODES = ["drain", "cut", "off"] as const;

/**
 * Maintenance: "drain" takes the backend out of the rule set for new
 * connections and lets open ones finish; "cut" also ends the open ones;
 * "off" puts it back in service.
 */
export async function setMaintenanceAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const input = parseForm(BackendRef.extend({ mode: choice("mode", MAINTENANCE_MODES) }), form);
  if (!input.ok) return input.state;
  const { farm: name, mark, mode } = input.data;
  const r = await (await farmService()).setMaintenance(name, mark, mode);
  refresh(name);
  return toState(r);
}
