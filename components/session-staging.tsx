import { setSessionStagingAction } from "@/lib/actions/staging";
import { ActionButton } from "@/components/ui/action-button";

/**
 * This login's own staging, on or off (operators): the installation setting
 * stays as it is, and other users' edits are applied at once either way.
 */
export function SessionStagingToggle({ on }: { on: boolean }) {
  return (
    <ActionButton action={setSessionStagingAction} fields={{ staging: on ? "off" : "on" }} size="sm" pendingText="Saving…" label={on ? "Apply my edits at once again (this login)" : "Stage my changes (this login only)"}>
      {on ? "Apply my edits at once" : "Stage my changes"}
    </ActionButton>
  );
}
