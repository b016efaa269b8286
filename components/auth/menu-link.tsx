"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { buttonClass } from "@/components/ui/button";

/** A link of the user menu, marked as the current page where it is. */
export function MenuLink({ href, children }: { href: string; children: string }) {
  const active = usePathname().startsWith(href);
  return (
    <Link href={href} aria-current={active ? "page" : undefined} className={`${buttonClass("ghost", "sm")} ${active ? "bg-accent-soft text-accent" : ""}`}>
      {children}
    </Link>
  );
}
