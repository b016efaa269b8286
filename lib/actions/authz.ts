import "server-only";
import { guard } from "@/lib/auth/next";
import type { Permission } from "@/lib/auth/roles";
import type { ActionState } from "./state";

/**
 * Every server action starts here: null when the signed-in user's role may
 * do `what`, otherwise the refusal the form shows (and nothing is done).
 * Server actions are POSTs any page URL accepts, so each checks for itself.
 */
export async function denied(permission: Permission, what: string): Promise<ActionState | null> {
  const g = await guard(permission, what);
  if (g.ok) return null;
  return { status: "failed", message: g.message, errors: { _form: [g.message] }, stamp: Date.now() };
}
