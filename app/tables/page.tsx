import type { Metadata } from "next";
import { LiveTables } from "@/components/tables/live-tables";
import { PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { formatTarget } from "@/lib/privileged/target";

export const metadata: Metadata = { title: "Live tables" };

type Props = { searchParams: Promise<{ farm?: string }> };

export default async function TablesPage({ searchParams }: Props) {
  const { target } = consoleEnv();
  const { farm } = await searchParams;
  const farms = (await (await farmService()).listFarms()).map((f) => f.name);
  return (
    <>
      <PageTitle
        title="Live tables"
        subtitle={
          target.target
            ? `mangle and nat as the kernel holds them in ${formatTarget(target.target)}, with packet and byte counters.`
            : "Applying is disabled (target none): there is no kernel to read."
        }
      />
      {target.target && <LiveTables farms={farms} initialFarm={farm ?? ""} />}
    </>
  );
}
