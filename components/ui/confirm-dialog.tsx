"use client";

import { useActionState, useEffect, useId, useRef, type ReactNode } from "react";
import { IDLE, type ActionState } from "@/lib/actions/state";
import { showActionToast } from "@/components/use-action-toast";
import { Button, type Tone } from "./button";

/**
 * A button that opens a modal <dialog> (focus trapped, Escape closes) whose
 * confirm button submits a server action with the given hidden fields. The
 * dialog opens on Cancel: Enter pressed twice (once on the trigger, once
 * more out of habit) must not delete, cut or stop anything.
 */
export function ConfirmDialog({
  trigger,
  triggerTone = "secondary",
  triggerSize = "md",
  triggerLabel,
  title,
  children,
  confirm,
  confirmTone = "primary",
  action,
  fields,
  disabled,
}: {
  trigger: ReactNode;
  triggerTone?: Tone;
  triggerSize?: "sm" | "md";
  /** Accessible name of the trigger when its text alone is ambiguous. */
  triggerLabel?: string;
  title: string;
  children: ReactNode;
  confirm: string;
  confirmTone?: Tone;
  action: (prev: ActionState, form: FormData) => Promise<ActionState>;
  fields: Record<string, string>;
  disabled?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  // Toasted when the action returns, not from the rendered state: what it
  // removed (a backend's row, with this dialog in it) is gone by then.
  const [state, formAction, pending] = useActionState(async (prev: ActionState, form: FormData) => {
    const next = await action(prev, form);
    showActionToast(next, true);
    return next;
  }, IDLE);
  const titleId = useId();
  const bodyId = useId();

  useEffect(() => {
    if (state.stamp) ref.current?.close();
  }, [state.stamp]);

  // The autofocus attribute only holds for server-rendered markup: focus Cancel in any case.
  const open = () => {
    ref.current?.showModal();
    cancel.current?.focus();
  };

  return (
    <>
      <Button tone={triggerTone} size={triggerSize} aria-label={triggerLabel} disabled={disabled || pending} onClick={open} aria-haspopup="dialog">
        {pending ? "Working…" : trigger}
      </Button>
      <dialog
        ref={ref}
        aria-labelledby={titleId}
        aria-describedby={bodyId}
        className="m-auto w-[min(44rem,calc(100vw-2rem))] rounded-lg border border-line bg-surface p-0 text-fg shadow-xl"
      >
        <form action={formAction}>
          {Object.entries(fields).map(([k, v]) => (
            <input key={k} type="hidden" name={k} value={v} />
          ))}
          <h2 id={titleId} className="border-b border-line px-5 py-3 text-base font-semibold">
            {title}
          </h2>
          <div id={bodyId} className="max-h-[60vh] overflow-auto px-5 py-4 text-sm">
            {children}
          </div>
          <div className="flex justify-end gap-2 border-t border-line px-5 py-3">
            <Button ref={cancel} onClick={() => ref.current?.close()} autoFocus>
              Cancel
            </Button>
            <Button type="submit" tone={confirmTone} disabled={pending}>
              {pending ? "Working…" : confirm}
            </Button>
          </div>
        </form>
      </dialog>
    </>
  );
}
