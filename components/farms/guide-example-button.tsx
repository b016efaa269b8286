"use client";

import { useActionState } from "react";
import { createGuideExampleAction, createLabExampleAction } from "@/lib/actions/farms";
import { IDLE, type ActionState } from "@/lib/actions/state";
import { Button } from "@/components/ui/button";
import { useActionToast } from "@/components/use-action-toast";

function ExampleButton({ action, label, title }: { action: (prev: ActionState) => Promise<ActionState>; label: string; title: string }) {
  const [state, run, pending] = useActionState(action, IDLE);
  useActionToast(state, { invalidToast: true });
  return (
    <form action={run}>
      <Button type="submit" disabled={pending} title={title}>
        {pending ? "Creating…" : label}
      </Button>
    </form>
  );
}

/** One click: the training guide's farm `app`, to read its rules against the guide (its addresses are not the lab's). */
export function GuideExampleButton() {
  return (
    <ExampleButton
      action={createGuideExampleAction}
      label="Guide example"
      title="Farm app: VIP 192.168.101.250 tcp/443, backends 192.168.1.10:443 and 192.168.1.11:443, marks 0x20c/0x20d, DNAT (the guide's addresses: for reading its rules, not for the lab)"
    />
  );
}

/** The same shape on the lab's addresses: a farm the Lab page can send connections to at once. */
export function LabExampleButton() {
  return (
    <ExampleButton
      action={createLabExampleAction}
      label="Lab example"
      title="Farm lab-example: VIP 198.51.100.200 tcp/443, backends 203.0.113.10:443 and 203.0.113.11:443, DNAT: try it on the Lab page"
    />
  );
}
