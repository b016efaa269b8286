"use client";

import { useEffect } from "react";

/**
 * When the session ends while a page is open (idle timeout, logout in
 * another tab, a new password, the user removed), the page's next request
 * to the console (its polling of /api/*, a server action) gets 401 from the
 * server: the browser then goes to the login page, coming back here after.
 */
export function SessionWatch() {
  useEffect(() => {
    const original = window.fetch;
    let leaving = false;
    const watched: typeof window.fetch = async (input, init) => {
      const res = await original(input, init);
      if (res.status === 401 && !leaving) {
        const target = new URL(typeof input === "string" || input instanceof URL ? input : input.url, location.href);
        if (target.origin === location.origin) {
          leaving = true;
          location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
        }
      }
      return res;
    };
    window.fetch = watched;
    return () => {
      if (window.fetch === watched) window.fetch = original;
    };
  }, []);
  return null;
}
