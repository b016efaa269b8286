"use client";

import { useActionState, useCallback, useEffect, useOptimistic, useRef } from "react";
import { toast } from "sonner";
import type { ActionState } from "@/lib/actions/state";

/**
 * One toast per action result. A refused apply is an error toast carrying
 * iptables' own words; it is never shown as a success.
 */
export function useActionToast(state: ActionState, opts: { invalidToast?: boolean; onOk?: () => void } = {}) {
  const seen = useRef(state.stamp);
  const { invalidToast = false, onOk } = opts;
  useEffect(() => {
    if (state.stamp === seen.current) return;
    seen.current = state.stamp;
    if (showActionToast(state, invalidToast)) onOk?.();
  }, [state, invalidToast, onOk]);
}

/**
 * useActionState whose result is toasted (and `onOk` run) the moment the
 * action answers. The state itself reaches the component only when the
 * transition commits, that is once the browser has the page the action
 * re-rendered (revalidatePath) and has rendered it: at 2,000 farms the toast
 * waited 0.5-1.5 s for that. `onOk` gets the form that was sent, so a caller
 * can show what was saved (an optimistic row) until the new page arrives.
 *
 * `saving(form)`: the acknowledgement shown the moment the form is sent —
 * a loading toast with that text, announced by the toasts' live region —
 * which the result then replaces in place (same toast), so an operator sees
 * at once that the click was taken and never mistakes "saving" for "done".
 * null: no acknowledgement for this form (say, values the shared schema
 * refuses, which the server answers at once with field errors). The fourth
 * value is the form being sent while the action runs (null otherwise), for
 * a caller that shows the submitted values optimistically: React drops it
 * when the action ends, so a refusal rolls the display back by itself.
 */
export function useToastedAction(
  action: (prev: ActionState, form: FormData) => Promise<ActionState>,
  initial: ActionState,
  opts: { invalidToast?: boolean; onOk?: (form: FormData, state: ActionState) => void; saving?: (form: FormData) => string | null } = {},
): [ActionState, (form: FormData) => void, boolean, FormData | null] {
  const latest = useRef(opts);
  useEffect(() => {
    latest.current = opts;
  });
  const [sent, setSent] = useOptimistic<FormData | null>(null);
  const run = useCallback(
    async (prev: ActionState, form: FormData) => {
      const text = latest.current.saving?.(form) ?? null;
      // Inside the action's transition: an optimistic value renders now, not when the transition commits.
      if (text !== null) setSent(form);
      const id = text !== null ? toast.loading(text) : undefined;
      let next: ActionState;
      try {
        next = await action(prev, form);
      } catch (e) {
        if (id !== undefined) toast.dismiss(id);
        throw e;
      }
      if (showActionToast(next, latest.current.invalidToast ?? false, id)) latest.current.onOk?.(form, next);
      return next;
    },
    [action, setSent],
  );
  const [state, dispatch, pending] = useActionState(run, initial);
  return [state, dispatch, pending, pending ? sent : null];
}

/**
 * The toast for one result; true when it was a success. `id`: the
 * acknowledgement toast it replaces (dismissed when the result has no toast
 * of its own: field errors the form shows).
 */
export function showActionToast(state: ActionState, invalidToast: boolean, id?: string | number): boolean {
  const same = id === undefined ? {} : { id };
  if (state.status === "ok") {
    toast.success(state.message, same);
    return true;
  }
  if (state.status === "failed") {
    toast.error(state.message.split(":")[0] ?? "Apply failed", { ...same, description: state.iptables ?? state.message, duration: 12000 });
  } else if (state.status === "invalid" && (invalidToast || state.errors._form)) {
    const field = Object.entries(state.errors).find(([k]) => k !== "_form")?.[1]?.[0];
    toast.error(state.errors._form?.join(" ") ?? (field ? `${state.message} ${field}` : state.message), same);
  } else if (id !== undefined) toast.dismiss(id);
  return false;
}
