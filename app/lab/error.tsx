"use client";

import { RouteError } from "@/components/route-error";

export default function LabError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="the lab" error={error} retry={retry} />;
}
