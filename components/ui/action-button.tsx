"use client";

import { useActionState } from "react";
import { IDLE, type ActionState } from "@/lib/actions/state";
import { showActionToast } from "@/components/use-action-toast";
import { Button, type Tone } from "./button";

/** A one-click server action (start, stop, re-apply) with its result toasted. */
export function ActionButton({
  action,
  fields,
  children,
  tone = "secondary",
  size = "md",
  disabled,
  label,
  pendingText = "Applying…",
}: {
  action: (prev: ActionState, form: FormData) => Promise<ActionState>;
  fields: Record<string, string>;
  children: React.ReactNode;
  tone?: Tone;
  size?: "sm" | "md";
  disabled?: boolean;
  label?: string;
  pendingText?: string;
}) {
  // The toast is shown when the action returns, not from the rendered state: a
  // button inside an alert that the success removes (Re-apply) is gone by then.
  const [, formAction, pending] = useActionState(async (prev: ActionState, form: FormData) => {
    const next = await action(prev, form);
    showActionToast(next, true);
    return next;
  }, IDLE);
  return (
    <form action={formAction}>
      {Object.entries(fields).map(([k, v]) => (
        <input key={k} type="hidden" name={k} value={v} />
      ))}
      <Button type="submit" tone={tone} size={size} disabled={disabled || pending} aria-label={label}>
        {pending ? pendingText : children}
      </Button>
    </form>
  );
}
