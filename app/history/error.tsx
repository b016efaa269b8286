"use client";

import { RouteError } from "@/components/route-error";

export default function HistoryError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="the apply history" error={error} retry={retry} />;
}
