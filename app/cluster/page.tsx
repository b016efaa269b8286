import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { can } from "@/lib/auth/roles";
import { ClusterLive, type ClusterRead } from "@/components/cluster/cluster-live";
import { PageTitle } from "@/components/ui/card";
import { consoleCluster } from "@/lib/console/cluster";
import { isAgentDown } from "@/lib/service/errors";

export const metadata: Metadata = { title: "Cluster" };
export const dynamic = "force-dynamic";

export default async function ClusterPage() {
  const user = await requireUser();
  // The first reading comes with the page; the component then polls /api/cluster.
  const initial: ClusterRead = await consoleCluster().then(
    (view) => ({ view }),
    (e: unknown) => ({ error: e instanceof Error ? e.message : String(e), agentUnavailable: isAgentDown(e) }),
  );
  return (
    <>
      <PageTitle
        title="Cluster"
        subtitle="The balancers sharing these farms: who is master (keepalived, VRRP), what each node holds, how far conntrackd has synced the connections, and which farm set each node's kernel runs."
      />
      <ClusterLive initial={initial} canOperate={can(user.role, "operate")} />
    </>
  );
}
