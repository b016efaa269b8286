import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { Suspense } from "react";
import type { Target } from "@/lib/privileged/target";
import { liveTablesView } from "@/lib/console/tables-view";
import { pageFilters, tablesReadKind, type TablesPageFilters } from "@/lib/console/tables-query";
import { LiveTables } from "@/components/tables/live-tables";
import { PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { sharedTablesRead } from "@/lib/service/tables-read";
import { formatTarget } from "@/lib/privileged/target";

export const metadata: Metadata = { title: "Live tables" };

type Props = { searchParams: Promise<Record<string, string | string[] | undefined>> };

export default async function TablesPage({ searchParams }: Props) {
  await requireUser();
  const { target } = consoleEnv();
  // The filters are kept in the URL (?farm=web&sort=packets&traffic=1): a reload or a shared link shows the same view.
  const filters = pageFilters(await searchParams);
  // The kernel read takes longest: start it now, the browser's first /api/tables request joins it.
  if (target.target) sharedTablesRead(target.target, tablesReadKind(filters)).catch(() => {});
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
          <TablesWithFirstRead target={target.target} farms={farms} filters={filters} />
        </Suspense>
      )}
    </>
  );
}

/** The first tables come with the page (streamed once the kernel is read); the component then polls. */
async function TablesWithFirstRead({ target, farms, filters }: { target: Target; farms: string[]; filters: TablesPageFilters }) {
  const initial = await sharedTablesRead(target, tablesReadKind(filters)).then(
    (snap) => liveTablesView(snap, { ...filters, chain: undefined }),
    () => null,
  );
  const { farm = "", scope, sort, traffic } = filters;
  return <LiveTables farms={farms} initialFilters={{ farm, scope, sort, traffic }} initial={initial} />;
}
