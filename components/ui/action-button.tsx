"use client";

import { useActionState } from "react";
import { IDLE, type ActionState } from "@/lib/actions/state";
import { useActionToast } from "@/components/use-action-toast";
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
  const [state, formAction, pending] = useActionState(action, IDLE);
  useActionToast(state, { invalidToast: true });
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
