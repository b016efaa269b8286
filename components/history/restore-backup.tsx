"use client";

import { useRouter } from "next/navigation";
import { useId, useRef, useState } from "react";
import { toast } from "sonner";
import { Button } from "@/components/ui/button";

/**
 * Restore from a backup file: the file is read in the browser and sent as
 * it is to POST /api/v1/config/restore (with the session; admin only, the
 * same validation, audit and limits as the API, 32 MiB), after a
 * confirmation that opens on Cancel. A file the schema refuses changes
 * nothing; the answer says why.
 */
export function RestoreBackup() {
  const router = useRouter();
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<{ name: string; text: string; farms: number | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const titleId = useId();
  const bodyId = useId();
  const inputId = useId();

  async function choose(f: File | undefined) {
    setError(null);
    if (!f) return setFile(null);
    const text = await f.text();
    let farms: number | null = null;
    try {
      const v = JSON.parse(text) as { farms?: unknown };
      farms = Array.isArray(v.farms) ? v.farms.length : null;
    } catch {
      farms = null;
    }
    setFile({ name: f.name, text, farms });
  }

  function open() {
    if (!file) return setError("Choose a backup file first (a farm file, as Download backup gives it).");
    dialog.current?.showModal();
    cancel.current?.focus();
  }

  async function restore() {
    if (!file) return;
    setPending(true);
    try {
      const r = await fetch("/api/v1/config/restore", { method: "POST", headers: { "Content-Type": "application/json" }, body: file.text, credentials: "same-origin" });
      const body = (await r.json().catch(() => ({}))) as { message?: string; error?: string; issues?: { path: string; message: string }[] };
      dialog.current?.close();
      if (r.ok) {
        toast.success(body.message ?? "Restored.");
        setFile(null);
        if (input.current) input.current.value = "";
        router.refresh();
      } else {
        const why = body.error ?? `the console answered ${r.status}`;
        setError(why);
        toast.error(`Restore refused: ${why}`, { duration: 12000 });
      }
    } finally {
      setPending(false);
    }
  }

  return (
    <div className="flex flex-wrap items-center gap-2">
      <label htmlFor={inputId} className="text-xs text-muted">
        Restore from a backup file
      </label>
      <input
        ref={input}
        id={inputId}
        type="file"
        accept="application/json,.json"
        onChange={(e) => void choose(e.target.files?.[0])}
        className="max-w-56 text-xs file:mr-2 file:rounded-md file:border file:border-line file:bg-surface file:px-2 file:py-1 file:text-xs"
        aria-describedby={error ? `${inputId}-error` : undefined}
      />
      <Button size="sm" onClick={open} disabled={pending} aria-haspopup="dialog">
        {pending ? "Restoring…" : "Restore…"}
      </Button>
      {error && (
        <p id={`${inputId}-error`} role="alert" className="basis-full text-xs text-bad" data-testid="restore-error">
          {error}
        </p>
      )}
      <dialog ref={dialog} aria-labelledby={titleId} aria-describedby={bodyId} className="m-auto w-[min(36rem,calc(100vw-2rem))] rounded-lg border border-line bg-surface p-0 text-fg shadow-xl">
        <h2 id={titleId} className="border-b border-line px-5 py-3 text-base font-semibold">
          Restore the whole configuration?
        </h2>
        <div id={bodyId} className="px-5 py-4 text-sm">
          <p>
            The farms of <strong className="break-all">{file?.name}</strong>
            {file?.farms != null ? ` (${file.farms} farm${file.farms === 1 ? "" : "s"})` : ""} replace every farm: farms it does not list are deleted, and the result is applied to the kernel in one transaction.
          </p>
          <p className="mt-2 text-muted">It is recorded as a new revision, so it can be reverted like any change. A file that is not valid changes nothing.</p>
        </div>
        <div className="flex justify-end gap-2 border-t border-line px-5 py-3">
          <Button ref={cancel} onClick={() => dialog.current?.close()} autoFocus>
            Cancel
          </Button>
          <Button tone="danger" onClick={() => void restore()} disabled={pending}>
            {pending ? "Restoring…" : "Restore"}
          </Button>
        </div>
      </dialog>
    </div>
  );
}
