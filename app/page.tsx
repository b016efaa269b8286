import { CreateFarmPanel } from "@/components/farms/create-farm-panel";
import { FarmTable } from "@/components/farms/farm-table";
import { Card, PageTitle } from "@/components/ui/card";
import { LiveErrorNote } from "@/components/live-error-note";
import { farmsOverview } from "@/lib/console/farm-service";

export default async function FarmsPage() {
  const { farms, liveError } = await farmsOverview();
  return (
    <>
      <PageTitle title="Farms" subtitle="Virtual services balanced by netfilter: each VIP:port spread over its backends by weight." />
      <CreateFarmPanel />
      {liveError && <LiveErrorNote message={liveError} />}
      <Card>
        <FarmTable farms={farms} />
      </Card>
    </>
  );
}
