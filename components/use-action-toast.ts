"use client";

import { useEffect, useRef } from "react";
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
