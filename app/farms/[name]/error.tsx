"use client";

import { RouteError } from "@/components/route-error";

export default function FarmError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="this farm" error={error} retry={retry} />;
}
