import "server-only";
import { audit, type AuditInput } from "@/lib/auth/audit";
import { clientAddress, guard } from "@/lib/auth/next";
import type { Permission } from "@/lib/auth/roles";
import type { SessionUser } from "@/lib/auth/sessions";
import { RefusedError } from "@/lib/auth/user-admin";
import { UserError } from "@/lib/auth/users";
import { consoleDb } from "@/lib/console/db";
import { toFileFarm } from "@/lib/farms/file";
import type { Farm } from "@/lib/farms/schema";
import { rowToResolved } from "@/lib/service/farm-rows";
import { loadFarm } from "@/lib/service/store";
import { withAuthor } from "@/lib/service/config-history";
import { withStagingSession } from "@/lib/service/staging";
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
 * The farm as the declarative file format writes it (what `natfarm export`
 * and the REST API give), read through the service; null when there is no
 * such farm. A read that fails leaves the audit entry without it rather than
 * failing the action.
 */
async function farmSnapshot(name: string | null): Promise<unknown> {
  if (!name) return undefined;
  try {
    // The store's read, not the farm service's: it queues behind no apply, and a read is all this is.
    const row = await loadFarm(await consoleDb(), name);
    return row ? toFileFarm(rowToResolved(row) as Farm) : null;
  } catch {
    return undefined;
  }
}

function beforeAfter(before: unknown, after: unknown): string {
  if (before === undefined && after === undefined) return "";
  if (JSON.stringify(before) === JSON.stringify(after)) return `farm unchanged: ${JSON.stringify(after)}`;
  return `before: ${JSON.stringify(before ?? null)} · after: ${JSON.stringify(after ?? null)}`;
}

/**
 * Checks the role (a refusal is audited by the check), runs the action and
 * records who did what to which farm from where, with the result and the
 * message the operator saw (iptables' own on a refused apply), the form's
 * fields (what was asked) and the farm before and after (what it did), in
 * the same `before: {…} · after: {…}` form the REST API records.
 */
export async function audited<S extends ActionState = ActionState>(
  permission: Permission,
  what: string,
  form: FormData | undefined,
  run: () => Promise<S>,
  // Actions that change no farm (lab traffic) skip the before/after snapshots.
  opts: { snapshots?: boolean } = {},
): Promise<S | ActionState> {
  const timing = actionTiming(what);
  const snapshots = opts.snapshots ?? true;
  const isForm = form instanceof FormData;
  const farmField = isForm ? (form.get("farm") ?? form.get("name")) : null;
  const farmName = typeof farmField === "string" ? farmField.slice(0, 64) : null;
  // The snapshot before is read beside the role check (it is only kept once the check passed):
  // one database round trip less on the way to the operator's feedback.
  const [g, before, address] = await Promise.all([guard(permission, what), snapshots ? farmSnapshot(farmName) : undefined, clientAddress()]);
  if (!g.ok) return refusal(g.message);
  timing.mark("guard + before");
  const entry = { actor: g.user.name, via: "session" as const, address, action: what, farm: farmName };
  const fields = isForm ? `form: ${fieldsOf(form)}` : "";
  try {
    // The configuration history names the signed-in user as the author of what run() changes.
    // …and its session, which may stage its own edits (lib/service/staging.ts).
    const state = await withAuthor({ name: g.user.name, via: "console" }, () => withStagingSession(g.user.sessionId, run));
    timing.mark("run");
    // An action without a farm field (the guide's example) names its farm in its state; a farm it made did not exist before.
    const farm = entry.farm ?? state.farm ?? null;
    const after = snapshots ? await farmSnapshot(farm) : undefined;
    timing.mark("after");
    await audit(await consoleDb(), {
      ...entry,
      farm,
      result: state.status === "ok" ? "ok" : state.status === "invalid" ? "invalid" : "failed",
      detail: [state.message, state.iptables ? `iptables: ${state.iptables}` : "", fields, snapshots ? beforeAfter(entry.farm ? before : farm && state.status === "ok" ? null : undefined, after) : ""].filter(Boolean).join(" · "),
    });
    timing.mark("audit");
    timing.done();
    return state;
  } catch (e) {
    // redirect() (after a farm is deleted) ends the action by throwing.
    const redirected = typeof (e as { digest?: unknown })?.digest === "string" && (e as { digest: string }).digest.startsWith("NEXT_REDIRECT");
    const after = snapshots ? await farmSnapshot(entry.farm) : undefined;
    await audit(await consoleDb(), { ...entry, result: redirected ? "ok" : "failed", detail: [redirected ? "done" : String(e), fields, snapshots ? beforeAfter(before, after) : ""].filter(Boolean).join(" · ") });
    throw e;
  }
}

/**
 * NATFARM_ACTION_TIMING=1 prints where a server action's time went
 * (bench/console.ts sets it): the role check with the snapshot before, the
 * service call, the snapshot after, the audit write.
 */
function actionTiming(what: string) {
  const on = process.env.NATFARM_ACTION_TIMING === "1";
  const t0 = performance.now();
  let last = t0;
  const parts: string[] = [];
  return {
    mark(name: string) {
      if (!on) return;
      const now = performance.now();
      parts.push(`${name} ${(now - last).toFixed(0)} ms`);
      last = now;
    },
    done() {
      if (on) console.error(`natfarm action timing (${what}): ${parts.join(", ")}, total ${(performance.now() - t0).toFixed(0)} ms`);
    },
  };
}

export interface AccountRun<S extends ActionState> {
  state: S;
  /** What the audit entry says (never a password or a secret). */
  detail: string;
  /** The user the change was about, when not the actor. */
  subject?: string;
}

/**
 * The account and users pages' actions: the role check (a refusal audited
 * by it), the run, and one audit entry under `action` (user.… or token.…),
 * whose result follows the state. A UserError (a bad name, a wrong current
 * password, the last admin) becomes the form's message with nothing
 * changed, audited as invalid; a RefusedError (the library's own role
 * check) as refused.
 */
export async function auditedAccount<S extends ActionState>(
  permission: Permission,
  what: string,
  action: string,
  run: (ctx: { user: SessionUser; address: string }) => Promise<AccountRun<S>>,
): Promise<S | ActionState> {
  const g = await guard(permission, what);
  if (!g.ok) return refusal(g.message);
  const address = await clientAddress();
  const entry: Pick<AuditInput, "actor" | "via" | "address" | "action"> = { actor: g.user.name, via: "session", address, action };
  const db = await consoleDb();
  try {
    const r = await run({ user: g.user, address });
    const result = r.state.status === "ok" ? "ok" : r.state.status === "invalid" ? "invalid" : "failed";
    await audit(db, { ...entry, result, detail: [r.subject ? `user ${r.subject}` : "", r.detail].filter(Boolean).join(": ") });
    return r.state;
  } catch (e) {
    if (e instanceof UserError || e instanceof RefusedError) {
      const refusedHere = e instanceof RefusedError;
      await audit(db, { ...entry, result: refusedHere ? "refused" : "invalid", detail: e.message });
      return { status: "invalid", message: e.message, errors: { _form: [e.message] }, stamp: Date.now() };
    }
    const redirected = typeof (e as { digest?: unknown })?.digest === "string" && (e as { digest: string }).digest.startsWith("NEXT_REDIRECT");
    if (!redirected) await audit(db, { ...entry, result: "failed", detail: String(e) });
    throw e;
  }
}
