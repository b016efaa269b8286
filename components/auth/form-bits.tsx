"use client";

import { useActionState } from "react";
import { IDLE, type ActionState } from "@/lib/actions/state";
import { useActionToast } from "@/components/use-action-toast";

/**
 * The account and users forms' common part: the action's state with its
 * toast, and the form's own sentence (what was refused or done) kept on the
 * page for screen readers and for anyone who missed the toast.
 */
export function useAuthForm<S extends ActionState>(action: (prev: S, form: FormData) => Promise<S>, initial: S = IDLE as S) {
  const [state, formAction, pending] = useActionState<S, FormData>(action, initial as Awaited<S>);
  useActionToast(state, { invalidToast: false });
  return { state: state as S, formAction, pending };
}

export function FormMessage({ state, testId }: { state: ActionState; testId?: string }) {
  const text = state.status === "ok" ? state.message : state.status === "idle" ? "" : (state.errors._form?.join(" ") ?? state.message);
  return (
    <p role={state.status === "ok" ? "status" : "alert"} data-testid={testId} className={`min-h-5 text-sm ${state.status === "ok" ? "text-ok" : "text-bad"}`}>
      {text}
    </p>
  );
}

/** The field's messages from a refused form. */
export const errorsOf = (state: ActionState, field: string) => (state.status === "invalid" ? state.errors[field] : undefined);
