"use server";

import { audited } from "./authz";
import { refreshFarmPages as refresh } from "./revalidate";
import { z } from "zod";
import { choice, FarmField, MarkField, parseForm } from "@/lib/console/action-input";
import { farmService } from "@/lib/console/farm-service";
import { backendFromForm, formValues } from "@/lib/console/form-data";
import { toFormState } from "@/lib/service/errors";
import type { ActionState } from "./state";

/**
 * Backend mutations. A backend is addressed by its mark: unique across all
 * farms and fixed for the backend's life, unlike its position or address.
 * Errors come back keyed by the backend form's fields (`ip`, `port`,
 * `weight`); what the form has no input for goes to `_form`, which it shows.
 */
const FarmRef = z.object({ farm: FarmField });
const BackendRef = FarmRef.extend({ mark: MarkField });
const BACKEND_FIELDS: ReadonlySet<string> = new Set(["ip", "port", "weight", "priority", "state"]);

export async function addBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "adding a backend", form, async () => {
    const input = parseForm(FarmRef, form);
    if (!input.ok) return input.state;
    const name = input.data.farm;
    const values = formValues(form);
    // The service checks the backend with the whole farm in one pass: a bad weight and a duplicate address together.
    const r = await (await farmService()).addBackend(name, backendFromForm(form));
    refresh(name);
    return toFormState(r, { values, backendFields: BACKEND_FIELDS });
  });
}

export async function updateBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "changing a backend", form, async () => {
    const input = parseForm(BackendRef, form);
    if (!input.ok) return input.state;
    const { farm: name, mark } = input.data;
    const values = formValues(form);
    const r = await (await farmService()).updateBackend(name, mark, backendFromForm(form));
    refresh(name);
    return toFormState(r, { values, backendFields: BACKEND_FIELDS });
  });
}

export async function removeBackendAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "removing a backend", form, async () => {
    const input = parseForm(BackendRef, form);
    if (!input.ok) return input.state;
    const { farm: name, mark } = input.data;
    const r = await (await farmService()).removeBackend(name, mark);
    refresh(name);
    return toFormState(r, { backendFields: BACKEND_FIELDS });
  });
}

const MAINTENANCE_MODES = ["drain", "cut", "off"] as const;

/**
 * "drain" takes the backend out of the rule set for new connections and
 * lets open ones finish; "cut" also ends the open ones; "off" puts it back
 * in service.
 */
export async function setMaintenanceAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "draining, cutting or restoring a backend", form, async () => {
    const input = parseForm(BackendRef.extend({ mode: choice("mode", MAINTENANCE_MODES) }), form);
    if (!input.ok) return input.state;
    const { farm: name, mark, mode } = input.data;
    const r = await (await farmService()).setMaintenance(name, mark, mode);
    refresh(name);
    return toFormState(r, { backendFields: BACKEND_FIELDS });
  });
}
