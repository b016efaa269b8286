"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";

/**
 * The seconds left to confirm an apply under savepoint, counting down. The
 * deadline itself lives on the server (the health checker rolls back by
 * itself, browser or not); at zero the page is refreshed to show what
 * happened.
 */
export function SavepointCountdown({ until }: { until: string }) {
  const router = useRouter();
  const end = new Date(until).getTime();
  const [left, setLeft] = useState(() => Math.max(0, Math.ceil((end - Date.now()) / 1000)));
  useEffect(() => {
    const t = setInterval(() => {
      const s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      setLeft(s);
      // A little after the deadline: the checker's loop runs every second.
      if (Date.now() > end + 2500) {
        clearInterval(t);
        router.refresh();
      }
    }, 500);
    return () => clearInterval(t);
  }, [end, router]);
  return (
    <span data-testid="savepoint-seconds" className="tabular-nums font-semibold">
      {left} s
    </span>
  );
}
