"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { currentAuthor } from "@/lib/service/config-history";
import { choice, parseForm } from "@/lib/console/action-input";
import { farmService, forgetDrift } from "@/lib/console/farm-service";
import { refused, toFormState } from "@/lib/service/errors";
import { currentStagingSession } from "@/lib/service/staging";
import { audited } from "./authz";
import type { ActionState } from "./state";

/**
 * Staged changes (lib/service/staging.ts) from the banner and History:
 * Apply changes (optionally under a savepoint), Discard and the savepoint's
 * confirmation need the operator role (what re-applying needs: the edits
 * themselves were each checked for their own role when made); turning
 * staging on or off is an installation setting: admin. Each checks the
 * role itself and is audited. A login can also stage its own edits
 * (operators), whatever the installation setting.
 */
function refreshAll() {
  forgetDrift();
  revalidatePath("/", "layout");
}

export async function applyStagedAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "applying the staged changes", form, async () => {
    const input = parseForm(z.object({ savepoint: choice("savepoint", ["no", "yes"] as const) }), form);
    if (!input.ok) return input.state;
    const r = await (await farmService()).applyStaged({ savepoint: input.data.savepoint === "yes" });
    refreshAll();
    return toFormState(r);
  }, { snapshots: false });
}

export async function discardStagedAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "discarding the staged changes", form, async () => {
    const r = await (await farmService()).discardStaged();
    refreshAll();
    return toFormState(r);
  }, { snapshots: false });
}

export async function confirmSavepointAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "confirming the applied changes", form, async () => {
    // audited() runs this as the signed-in user.
    const r = await (await farmService()).confirmSavepoint(currentAuthor().name);
    refreshAll();
    return toFormState(r);
  }, { snapshots: false });
}

export async function setStagingAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("administer", "turning staged changes on or off", form, async () => {
    const input = parseForm(z.object({ staging: choice("staging", ["on", "off"] as const) }), form);
    if (!input.ok) return input.state;
    const r = await (await farmService()).setStaging(input.data.staging === "on");
    refreshAll();
    return toFormState(r);
  }, { snapshots: false });
}

/** This login's own staging (operators: viewers change nothing to stage); the installation setting stays as it is. */
export async function setSessionStagingAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return audited("operate", "staging this session's changes or not", form, async () => {
    const input = parseForm(z.object({ staging: choice("staging", ["on", "off"] as const) }), form);
    if (!input.ok) return input.state;
    const session = currentStagingSession();
    if (!session) return toFormState(refused("No console session: sign in again."));
    const r = await (await farmService()).setSessionStaging(session, input.data.staging === "on");
    refreshAll();
    return toFormState(r);
  }, { snapshots: false });
}
