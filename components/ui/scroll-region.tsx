import type { ReactNode } from "react";

/**
 * A box that scrolls sideways when its content is wider than the screen (a
 * rules table on a phone). It takes the keyboard focus, so that arrow keys
 * can scroll it without a mouse, and is named for what it holds.
 */
export function ScrollRegion({ label, children, className = "" }: { label: string; children: ReactNode; className?: string }) {
  return (
    <div role="region" aria-label={label} tabIndex={0} className={`overflow-x-auto focus-visible:outline-2 focus-visible:outline-offset-[-2px] ${className}`}>
      {children}
    </div>
  );
}
