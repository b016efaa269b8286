"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { parseForm } from "@/lib/console/action-input";
import { farmService, forgetDrift } from "@/lib/console/farm-service";
import { toFormState } from "@/lib/service/errors";
import { audited } from "./authz";
import type { ActionState } from "./state";

/**
 * History's revert: the configuration of a revision becomes the current
 * one, as a new revision, applied in one kernel transaction. Admin only (a
 * revert can create, change and delete any farm, which roles.ts gives
 * admins); checked here whatever the page showed, and audited.
 */
const RevisionRef = z.object({
  revision: z.coerce.number({ error: "revision must be a revision number" }).int({ error: "revision must be a revision number" }).min(1, { error: "revision must be a revision number" }).max(2_147_483_647, { error: "revision must be a revision number" }),
});

export async function revertAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "reverting the configuration to a revision", form, async () => {
    const input = parseForm(RevisionRef, form);
    if (!input.ok) return input.state;
    const r = await (await farmService()).revert(input.data.revision);
    forgetDrift();
    revalidatePath("/", "layout");
    return toFormState(r);
  }, { snapshots: false });
}
