import type { ReactNode } from "react";

export function AuthCard({ title, subtitle, children }: { title: string; subtitle?: ReactNode; children: ReactNode }) {
  return (
    <div className="mx-auto mt-16 w-full max-w-sm">
      <div className="mb-6 flex items-center justify-center gap-2 text-lg font-semibold tracking-tight">
        <svg aria-hidden="true" viewBox="0 0 24 24" className="h-7 w-7 text-accent" fill="none" stroke="currentColor" strokeWidth="2">
          <circle cx="5" cy="12" r="2.5" />
          <circle cx="19" cy="5" r="2.5" />
          <circle cx="19" cy="12" r="2.5" />
          <circle cx="19" cy="19" r="2.5" />
          <path d="M7.5 12h9M7 11l9.5-5M7 13l9.5 5" />
        </svg>
        natfarm
      </div>
      <section aria-labelledby="auth-title" className="rounded-lg border border-line bg-surface p-6 shadow-sm">
        <h1 id="auth-title" className="text-base font-semibold">
          {title}
        </h1>
        {subtitle && <p className="mt-1 mb-4 text-sm text-muted">{subtitle}</p>}
        {children}
      </section>
    </div>
  );
}
