"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";

/**
 * The main navigation. The header shows it to signed-in users only, so the
 * links every role may follow that are not the header's own (the API
 * reference) are added here, after the header's.
 */
const FOR_EVERY_USER = [
  { href: "/api-docs", label: "API" },
  { href: "/cluster", label: "Cluster" },
];

export function NavLinks({ links }: { links: { href: string; label: string }[] }) {
  const path = usePathname();
  const all = [...links, ...FOR_EVERY_USER.filter((l) => !links.some((x) => x.href === l.href))];
  return (
    <ul className="flex flex-wrap items-center gap-1">
      {all.map((l) => {
        const active = l.href === "/" ? path === "/" || path.startsWith("/farms") : path.startsWith(l.href);
        return (
          <li key={l.href}>
            <Link
              href={l.href}
              aria-current={active ? "page" : undefined}
              className={`rounded-md px-2.5 py-1.5 text-sm font-medium ${active ? "bg-accent-soft text-accent" : "text-muted hover:bg-surface-2 hover:text-fg"}`}
            >
              {l.label}
            </Link>
          </li>
        );
      })}
    </ul>
  );
}
