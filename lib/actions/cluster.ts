"use server";

import { revalidatePath } from "next/cache";
import { audited } from "./authz";
import { parseForm } from "@/lib/console/action-input";
import { consoleMaintenance } from "@/lib/console/cluster";
import { failureState } from "@/lib/service/errors";
import { MaintenanceInput } from "@/lib/service/cluster";
import type { ActionState } from "./state";

/**
 * A node into maintenance (it hands over: the floating addresses move to a
 * ready backup, whose takeover commits the synced connections) or back in
 * service. Operators and admins only; audited with the node and the mode.
 * The agent refuses a handover no node can take, and nothing changes.
 */
export async function clusterMaintenanceAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "putting a cluster node in or out of maintenance", form, async () => {
    const parsed = parseForm(MaintenanceInput, form);
    if (!parsed.ok) return parsed.state;
    try {
      const r = await consoleMaintenance(parsed.data);
      revalidatePath("/cluster");
      const message = !r.changed
        ? `${r.node} was already ${r.on ? "in maintenance" : "in service"}: nothing changed.`
        : r.on
          ? `${r.node} is in maintenance; ${r.master ?? "no node"} holds the floating addresses (${r.ms} ms).`
          : `${r.node} is back in service as a backup; ${r.master ?? "no node"} stays master (${r.ms} ms).`;
      return { status: "ok", message, errors: {}, stamp: Date.now() };
    } catch (e) {
      if ((e as Error).name === "ClusterRefusedError" || (e as Error).name === "NoClusterError") return { status: "invalid", message: (e as Error).message, errors: { _form: [(e as Error).message] }, stamp: Date.now() };
      return failureState(e, "changed");
    }
  });
}
