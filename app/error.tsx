"use client";

import { RouteError } from "@/components/route-error";

export default function FarmsError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="the farms" error={error} retry={retry} />;
}
