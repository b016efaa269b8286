import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { Suspense } from "react";
import type { Target } from "@/lib/privileged/target";
import { TABLES_MAX_RULES, tablesView } from "@/lib/console/tables-view";
import { LiveTables } from "@/components/tables/live-tables";
import { PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { sharedTablesRead } from "@/lib/service/tables-read";
import { formatTarget } from "@/lib/privileged/target";

export const metadata: Metadata = { title: "Live tables" };

const firstRead = (farm?: string) => ({ scope: "natfarm" as const, farm: farm || undefined, maxRules: TABLES_MAX_RULES });

type Props = { searchParams: Promise<{ farm?: string }> };

export default async function TablesPage({ searchParams }: Props) {
  await requireUser();
  const { target } = consoleEnv();
  const { farm } = await searchParams;
  // The kernel read takes longest: start it now, the browser's first /api/tables request joins it.
  if (target.target) sharedTablesRead(target.target, firstRead(farm)).catch(() => {});
  const farms = await (await farmService()).listFarmNames();
  return (
    <>
      <PageTitle
        title="Live tables"
        subtitle={
          target.target
            ? target.engine === "nftables"
              ? `natfarm's nftables table (ip natfarm) as the kernel holds it in ${formatTarget(target.target)}: chains, maps and the backends' counters.`
              : `mangle and nat as the kernel holds them in ${formatTarget(target.target)}, with packet and byte counters.`
            : "Applying is disabled (target none): there is no kernel to read."
        }
      />
      {target.target && (
        <Suspense fallback={<p className="rounded-lg border border-line bg-surface px-4 py-6 text-sm text-muted">Reading the live tables…</p>}>
          <TablesWithFirstRead target={target.target} farms={farms} initialFarm={farm ?? ""} />
        </Suspense>
      )}
    </>
  );
}

/** The first tables come with the page (streamed once the kernel is read); the component then polls. */
async function TablesWithFirstRead({ target, farms, initialFarm }: { target: Target; farms: string[]; initialFarm: string }) {
  const initial = await sharedTablesRead(target, firstRead(initialFarm)).then(
    (snap) => tablesView(snap, { farm: initialFarm || undefined }),
    () => null,
  );
  return <LiveTables farms={farms} initialFarm={initialFarm} initial={initial} />;
}
