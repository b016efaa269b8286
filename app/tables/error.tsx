"use client";

import { RouteError } from "@/components/route-error";

export default function TablesError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="the live tables" error={error} retry={retry} />;
}
