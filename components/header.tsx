import Link from "next/link";
import type { ReactNode } from "react";
import type { ConsoleTarget } from "@/lib/console/env";
import { formatTarget } from "@/lib/privileged/target";
import { LogoMark } from "./logo";
import { NavLinks } from "./nav-links";
import { ThemeToggle } from "./theme-toggle";

export function Header({ target, user }: { target: ConsoleTarget; user?: ReactNode }) {
  const links = [
    { href: "/", label: "Farms" },
    { href: "/tables", label: "Live tables" },
    ...(target.kind === "lab" ? [{ href: "/lab", label: "Lab" }] : []),
    { href: "/history", label: "History" },
  ];
  return (
    <header className="sticky top-0 z-30 border-b border-line bg-surface/95 backdrop-blur">
      <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-2.5 sm:px-6">
        <Link href="/" className="flex items-center gap-2 font-semibold tracking-tight" aria-label="natfarm home">
          <LogoMark className="h-6 w-6 text-accent" />
          natfarm
        </Link>
        <nav aria-label="Main" className="order-3 w-full sm:order-none sm:w-auto">
          <NavLinks links={links} />
        </nav>
        {/* Wraps on a phone (target, theme, the user's links): nothing may push the page sideways. */}
        <div className="ml-auto flex min-w-0 flex-wrap items-center justify-end gap-2">
          <TargetBadge target={target} />
          <ThemeToggle />
          {user}
        </div>
      </div>
    </header>
  );
}

function TargetBadge({ target }: { target: ConsoleTarget }) {
  const detail = target.target ? formatTarget(target.target) : "rules are not applied";
  const tone = target.kind === "none" ? "border-warn/40 bg-warn-soft text-warn" : target.kind === "host" ? "border-bad/40 bg-bad-soft text-bad" : "border-ok/40 bg-ok-soft text-ok";
  return (
    <p
      data-testid="active-target"
      className={`flex items-center gap-1.5 rounded-md border px-2.5 py-1 text-xs font-medium ${tone}`}
      title={detail}
    >
      {/* Full-strength text on the tinted badge: faded text fell below 4.5:1 contrast (axe). */}
      <span className="text-[11px] uppercase tracking-wide">Target</span>
      <span className="font-mono">{target.label}</span>
      <span data-testid="active-engine" className="font-mono">{target.engine}</span>
      {target.kind === "lab" && <span className="hidden font-mono md:inline">({detail})</span>}
    </p>
  );
}
