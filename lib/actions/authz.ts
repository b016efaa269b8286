import "server-only";
import { audit } from "@/lib/auth/audit";
import { clientAddress, guard } from "@/lib/auth/next";
import type { Permission } from "@/lib/auth/roles";
import { consoleDb } from "@/lib/console/db";
import type { ActionState } from "./state";

/**
 * Every server action starts here: server actions are POSTs any page URL
 * accepts, so each checks the session and the role for itself.
 */
function refusal(message: string): ActionState {
  return { status: "failed", message, errors: { _form: [message] }, stamp: Date.now() };
}

/** null when the signed-in user's role may do `what`, otherwise the refusal the form shows (and nothing is done). */
export async function denied(permission: Permission, what: string): Promise<ActionState | null> {
  const g = await guard(permission, what);
  return g.ok ? null : refusal(g.message);
}

/** The form's fields as the audit log shows them (farm forms carry no secret). */
function fieldsOf(form: FormData): string {
  const out: Record<string, string> = {};
  for (const [k, v] of form.entries()) if (!k.startsWith("$ACTION") && typeof v === "string") out[k] = v.slice(0, 200);
  return JSON.stringify(out).slice(0, 1000);
}

/**
 * Checks the role (a refusal is audited by the check), runs the action and
 * records who did what to which farm from where, with the result and the
 * message the operator saw (iptables' own on a refused apply).
 */
export async function audited(permission: Permission, what: string, form: FormData | undefined, run: () => Promise<ActionState>): Promise<ActionState> {
  const g = await guard(permission, what);
  if (!g.ok) return refusal(g.message);
  const isForm = form instanceof FormData;
  const farmField = isForm ? (form.get("farm") ?? form.get("name")) : null;
  const entry = {
    actor: g.user.name,
    via: "session" as const,
    address: await clientAddress(),
    action: what,
    farm: typeof farmField === "string" ? farmField.slice(0, 64) : null,
  };
  const fields = isForm ? fieldsOf(form) : "";
  try {
    const state = await run();
    await audit(await consoleDb(), {
      ...entry,
      result: state.status === "ok" ? "ok" : state.status === "invalid" ? "invalid" : "failed",
      detail: [state.message, state.iptables ? `iptables: ${state.iptables}` : "", fields].filter(Boolean).join(" · "),
    });
    return state;
  } catch (e) {
    // redirect() (after a farm is deleted) ends the action by throwing.
    const redirected = typeof (e as { digest?: unknown })?.digest === "string" && (e as { digest: string }).digest.startsWith("NEXT_REDIRECT");
    await audit(await consoleDb(), { ...entry, result: redirected ? "ok" : "failed", detail: [redirected ? "done" : String(e), fields].join(" · ") });
    throw e;
  }
}
