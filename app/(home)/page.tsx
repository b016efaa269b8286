import { ApplyAllButton } from "@/components/farms/apply-all-button";
import { requireUser } from "@/lib/auth/next";
import { can } from "@/lib/auth/roles";
import { CreateFarmPanel } from "@/components/farms/create-farm-panel";
import { FarmTable } from "@/components/farms/farm-table";
import { Card, PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmsOverview } from "@/lib/console/farm-service";

export default async function FarmsPage() {
  const user = await requireUser();
  const { farms } = await farmsOverview();
  const { target } = consoleEnv();
  return (
    <>
      <PageTitle
        title="Farms"
        subtitle="Virtual services balanced by netfilter: each VIP:port spread over its backends by weight."
        actions={<ApplyAllButton farms={farms.name.length} target={target.label} disabled={!target.canApply} />}
      />
      <CreateFarmPanel lab={target.kind === "lab"} />
      <Card>
        <FarmTable packed={farms} live={Boolean(target.target)} canOperate={can(user.role, "operate")} canAdminister={can(user.role, "administer")} />
      </Card>
    </>
  );
}
