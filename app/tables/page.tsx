import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { can } from "@/lib/auth/roles";
import { pageFilters, tablesReadKind } from "@/lib/console/tables-query";
import { LiveTables } from "@/components/tables/live-tables";
import { PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { sharedTablesRead } from "@/lib/service/tables-read";
import { formatTarget } from "@/lib/privileged/target";

export const metadata: Metadata = { title: "Live tables" };

type Props = { searchParams: Promise<Record<string, string | string[] | undefined>> };

export default async function TablesPage({ searchParams }: Props) {
  const user = await requireUser();
  const { target } = consoleEnv();
  // The filters are kept in the URL (?farm=web&sort=packets&traffic=1): a reload or a shared link shows the same view.
  const filters = pageFilters(await searchParams);
  // The kernel read takes longest (hundreds of ms at 2,000 farms): the page does not wait for it, but
  // starts it now, and the browser's first /api/tables request joins it.
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
        <LiveTables
          farms={farms}
          initialFilters={{ farm: filters.farm ?? "", scope: filters.scope, sort: filters.sort, traffic: filters.traffic }}
          reset={can(user.role, "operate") ? { engine: target.engine, node: formatTarget(target.target) } : null}
        />
      )}
    </>
  );
}
