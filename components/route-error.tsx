"use client";

import Link from "next/link";
import { buttonClass } from "@/components/ui/button";

/** Shared body of the routes' error.tsx: what failed, the server's digest, and a way back. */
export function RouteError({ what, error, retry }: { what: string; error: unknown; retry: () => void }) {
  const e = error as { message?: string; digest?: string } | undefined;
  return (
    <div role="alert" className="mx-auto max-w-xl rounded-lg border border-bad/40 bg-bad-soft p-6">
      <h1 className="text-lg font-semibold text-bad">Could not load {what}</h1>
      <p className="mt-2 text-sm text-fg">{e?.message || "An unexpected error happened on the server."}</p>
      {e?.digest && <p className="mt-1 font-mono text-xs text-muted">Error digest {e.digest} (see the server log)</p>}
      <div className="mt-4 flex gap-2">
        <button type="button" className={buttonClass("primary")} onClick={() => retry()}>
          Try again
        </button>
        <Link href="/" className={buttonClass()}>
          Farms
        </Link>
      </div>
    </div>
  );
}
