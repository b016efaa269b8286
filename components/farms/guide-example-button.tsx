"use client";

import { useActionState } from "react";
import { createGuideExampleAction } from "@/lib/actions/farms";
import { IDLE } from "@/lib/actions/state";
import { Button } from "@/components/ui/button";
import { useActionToast } from "@/components/use-action-toast";

/** One click: the training guide's farm `app`, to read its rules against the guide. */
export function GuideExampleButton() {
  const [state, action, pending] = useActionState(createGuideExampleAction, IDLE);
  useActionToast(state, { invalidToast: true });
  return (
    <form action={action}>
      <Button
        type="submit"
        disabled={pending}
        title="Farm app: VIP 192.168.101.250 tcp/443, backends 192.168.1.10:443 and 192.168.1.11:443, marks 0x20c/0x20d, DNAT"
      >
        {pending ? "Creating…" : "Guide example"}
      </Button>
    </form>
  );
}
