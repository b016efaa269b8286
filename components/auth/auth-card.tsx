import type { ReactNode } from "react";
import { LogoMark } from "../logo";

export function AuthCard({ title, subtitle, children }: { title: string; subtitle?: ReactNode; children: ReactNode }) {
  return (
    <div className="mx-auto mt-16 w-full max-w-sm">
      <div className="mb-6 flex items-center justify-center gap-2 text-lg font-semibold tracking-tight">
        <LogoMark className="h-7 w-7 text-accent" />
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
