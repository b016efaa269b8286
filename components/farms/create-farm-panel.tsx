"use client";

import { useCan } from "@/components/auth/role";
import { useCallback, useState } from "react";
import { Button } from "@/components/ui/button";
import { CreateFarmForm } from "./create-farm-form";
import { GuideExampleButton, LabExampleButton } from "./guide-example-button";

/** `lab`: the console's target is the lab, so a farm on the lab's addresses can be tried at once. */
export function CreateFarmPanel({ lab = false }: { lab?: boolean }) {
  const [open, setOpen] = useState(false);
  const close = useCallback(() => setOpen(false), []);
  if (!useCan("administer")) return null;
  return (
    <div className="mb-5">
      <div className="flex flex-wrap items-center gap-2">
        <Button tone="primary" aria-expanded={open} aria-controls="create-farm" onClick={() => setOpen((o) => !o)}>
          {open ? "Close form" : "New farm"}
        </Button>
        <GuideExampleButton />
        {lab && <LabExampleButton />}
      </div>
      <section
        id="create-farm"
        aria-labelledby="create-farm-title"
        hidden={!open}
        className="mt-3 rounded-lg border border-line bg-surface shadow-sm"
      >
        <h2 id="create-farm-title" className="border-b border-line px-4 py-3 text-sm font-semibold">
          New farm
        </h2>
        {open && <CreateFarmForm onDone={close} />}
      </section>
    </div>
  );
}
