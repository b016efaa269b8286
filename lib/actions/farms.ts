"use server";

import { audited } from "./authz";
import { refreshFarmPages as refresh } from "./revalidate";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { MODES, FARM_STATUSES } from "@/lib/farms/schema";
import { choice, FarmField, FarmListField, parseForm } from "@/lib/console/action-input";
import { farmService } from "@/lib/console/farm-service";
import { farmFromForm, formValues, settingsFromForm } from "@/lib/console/form-data";
import { GUIDE_EXAMPLE, LAB_EXAMPLE } from "@/lib/console/guide-example";
import { refused, toFormState as toState } from "@/lib/service/errors";
import { parseBackendAddress, type BulkOp } from "@/lib/service/farm-bulk";
import type { ActionState } from "./state";

/**
 * Farm mutations. Each parses its form with safeParse first (a missing or
 * malformed field is an "invalid" state naming it, nothing changed, never an
 * exception), validates with the shared schema (the service checks the whole
 * resulting farm set), writes the database, applies only the affected farm
 * and returns an ActionState; a failed apply comes back as "failed" with
 * iptables' own message, never as success.
 */
const FarmRef = z.object({ farm: FarmField });

export async function createFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "creating a farm", form, async () => {
    const isForm = parseForm(z.object({}), form);
    if (!isForm.ok) return isForm.state;
    const { farm, rowOf } = farmFromForm(form);
    const values = formValues(form);
    // No check of the farm alone first: the service's one pass over the farm set reports its field errors
    // together with what only the other farms show (an overlap, a name taken).
    const r = await (await farmService()).createFarm(farm);
    // A refused farm changed nothing: no page to refresh.
    if (r.ok || r.reason !== "invalid") refresh(farm.name);
    return toState(r, { values, rowOf });
  });
}

export async function createGuideExampleAction(_prev: ActionState): Promise<ActionState> {
  return audited("administer", "creating a farm", undefined, async () => {
    const service = await farmService();
    if (await service.getFarm(GUIDE_EXAMPLE.name)) return toState(refused(`The guide's farm "${GUIDE_EXAMPLE.name}" already exists.`));
    const r = await service.createFarm(GUIDE_EXAMPLE);
    refresh(GUIDE_EXAMPLE.name);
    return toState(r);
  });
}

/** The guide's farm on the lab's addresses: one that the Lab page can send connections to. */
export async function createLabExampleAction(_prev: ActionState): Promise<ActionState> {
  return audited("administer", "creating a farm", undefined, async () => {
    const service = await farmService();
    if (await service.getFarm(LAB_EXAMPLE.name)) return toState(refused(`The lab example farm "${LAB_EXAMPLE.name}" already exists: open it from the list, or try it on the Lab page.`));
    const r = await service.createFarm(LAB_EXAMPLE);
    refresh(LAB_EXAMPLE.name);
    return toState(r);
  });
}

export async function setModeAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "switching a farm between NAT and DNAT", form, async () => {
    const input = parseForm(FarmRef.extend({ mode: choice("mode", MODES) }), form);
    if (!input.ok) return input.state;
    const { farm: name, mode } = input.data;
    const r = await (await farmService()).setMode(name, mode);
    refresh(name);
    return toState(r);
  });
}

export async function setStatusAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "starting or stopping a farm", form, async () => {
    const input = parseForm(FarmRef.extend({ status: choice("status", FARM_STATUSES) }), form);
    if (!input.ok) return input.state;
    const { farm: name, status } = input.data;
    const r = await (await farmService()).setStatus(name, status);
    refresh(name);
    return toState(r);
  });
}

export async function updateFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "changing a farm's settings", form, async () => {
    const input = parseForm(FarmRef, form);
    if (!input.ok) return input.state;
    const name = input.data.farm;
    const values = formValues(form);
    const patch = {
      vip: String(form.get("vip") ?? ""),
      ports: String(form.get("ports") ?? ""),
      protocol: String(form.get("protocol") ?? "") as "tcp",
    };
    const r = await (await farmService()).updateFarm(name, patch);
    refresh(name);
    return toState(r, { values });
  });
}

/**
 * The farm page's Settings form: VIP, ports, protocol, scheduler, persistence
 * and the health check. The service validates the whole resulting farm (and
 * the farm set) with the shared schema; errors come back keyed by the form's
 * field names (`healthcheck.timeout`). A setting that makes a backend invalid
 * (a health check with no port to probe) is reported on the form, naming it.
 */
export async function updateFarmSettingsAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "changing a farm's settings", form, async () => {
    const input = parseForm(FarmRef, form);
    if (!input.ok) return input.state;
    const name = input.data.farm;
    const values = formValues(form);
    const service = await farmService();
    const r = await service.updateFarm(name, settingsFromForm(form), "settings");
    if (!r.ok && r.reason === "invalid") {
      // The form has no backend inputs: a backend's error names the backend.
      const backends = (await service.getFarm(name))?.backends ?? [];
      const backendLabel = (i: number) => {
        const b = backends[i];
        return b ? `backend ${b.ip}${b.port ? `:${b.port}` : ""}` : `backend ${i + 1}`;
      };
      return toState(r, { values, backendLabel });
    }
    refresh(name);
    return toState(r, { values });
  });
}

/** Makes the kernel hold exactly the database's farms (every farm, one transaction per table). */
export async function applyAllAction(_prev: ActionState): Promise<ActionState> {
  return audited("operate", "re-applying the farms", undefined, async () => {
    const r = await (await farmService()).applyAll();
    refresh();
    return toState(r);
  });
}

export async function reapplyAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "re-applying a farm", form, async () => {
    const input = parseForm(FarmRef, form);
    if (!input.ok) return input.state;
    const name = input.data.farm;
    const r = await (await farmService()).reapply(name);
    refresh(name);
    return toState(r);
  });
}

export async function deleteFarmAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "deleting a farm", form, async () => {
    const input = parseForm(FarmRef, form);
    if (!input.ok) return input.state;
    const name = input.data.farm;
    const r = await (await farmService()).deleteFarm(name);
    refresh(name);
    if (r.ok) redirect(`/?deleted=${encodeURIComponent(name)}`);
    return toState(r);
  });
}

const BULK_OPS = ["start", "stop", "drain", "delete"] as const;

/**
 * The farms list's bulk actions: start, stop, drain a backend address
 * (operators) or delete (admins) the selected farms, through the service's
 * one transaction and one apply. The role is checked for the operation the
 * form asks for, before anything is read: a viewer's or an operator's
 * replayed delete is refused and audited with nothing changed.
 */
export async function bulkFarmsAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  const asked = form instanceof FormData ? form.get("op") : null;
  const permission = asked === "delete" ? "administer" : "operate";
  const what = asked === "delete" ? "deleting farms" : asked === "drain" ? "draining a backend in several farms" : "starting or stopping several farms";
  return audited(permission, what, form, async () => {
    const input = parseForm(z.object({ op: choice("op", BULK_OPS), farms: FarmListField, address: z.string().optional() }), form);
    if (!input.ok) return input.state;
    const { op: kind, farms, address } = input.data;
    let op: BulkOp;
    if (kind === "drain") {
      const a = parseBackendAddress(address ?? "");
      if (!a) return toState(refused(`The backend address must be an IPv4 address, optionally with :port (e.g. 203.0.113.10 or 203.0.113.10:80), got ${JSON.stringify(address ?? "")}: nothing changed.`));
      op = { kind, ...a };
    } else op = { kind };
    const { result } = await (await farmService()).bulk(farms, op);
    if (result.ok || result.reason !== "invalid") {
      refresh();
      revalidatePath("/farms/[name]", "page");
    }
    return toState(result);
  });
}
