"use client";

import { RouteError } from "@/components/route-error";

export default function ClusterError({ error, retry }: { error: unknown; retry: () => void }) {
  return <RouteError what="the cluster" error={error} retry={retry} />;
}
