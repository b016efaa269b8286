"use client";

import { useActionState, useCallback, useEffect, useRef } from "react";
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
 */
export function useToastedAction(
  action: (prev: ActionState, form: FormData) => Promise<ActionState>,
  initial: ActionState,
  opts: { invalidToast?: boolean; onOk?: (form: FormData, state: ActionState) => void } = {},
) {
  const latest = useRef(opts);
  useEffect(() => {
    latest.current = opts;
  });
  const run = useCallback(
    async (prev: ActionState, form: FormData) => {
      const next = await action(prev, form);
      if (showActionToast(next, latest.current.invalidToast ?? false)) latest.current.onOk?.(form, next);
      return next;
    },
    [action],
  );
  return useActionState(run, initial);
}

/** The toast for one result; true when it was a success. */
export function showActionToast(state: ActionState, invalidToast: boolean): boolean {
  if (state.status === "ok") {
    toast.success(state.message);
    return true;
  }
  if (state.status === "failed") {
    toast.error(state.message.split(":")[0] ?? "Apply failed", { description: state.iptables ?? state.message, duration: 12000 });
  } else if (state.status === "invalid" && (invalidToast || state.errors._form)) {
    const field = Object.entries(state.errors).find(([k]) => k !== "_form")?.[1]?.[0];
    toast.error(state.errors._form?.join(" ") ?? (field ? `${state.message} ${field}` : state.message));
  }
  return false;
}
