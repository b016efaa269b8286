"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";

/**
 * The banner was drawn before the kernel answered (the page does not wait
 * for it): the page is refreshed once in a moment, when the server holds the
 * reading.
 */
export function StagedLiveRefresh() {
  const router = useRouter();
  useEffect(() => {
    const t = setTimeout(() => router.refresh(), 1000);
    return () => clearTimeout(t);
  }, [router]);
  return null;
}
