import "server-only";
import { clusterOverview, clusterSetting, NO_CLUSTER_MESSAGE, setNodeMaintenance, type ClusterView, type MaintenanceRequest } from "../service/cluster.ts";
import { loadClusterNodes } from "../cluster/node-sync.ts";
import { rowToResolved } from "../service/farm-rows.ts";
import { consoleDb } from "./db.ts";
import { farmService } from "./farm-service.ts";

/**
 * The console's cluster: the configured one (NATFARM_CLUSTER), read through
 * the console's kernel port (the agent), compared with the database's farms.
 */
export async function consoleCluster(): Promise<ClusterView> {
  const setting = clusterSetting();
  if (setting.kind === "none") return { configured: false, message: NO_CLUSTER_MESSAGE };
  const service = await farmService();
  return clusterOverview({ setting, kernel: service.kernel, desired: async () => (await service.listFarms()).map(rowToResolved), records: async () => loadClusterNodes(await consoleDb()) });
}

export async function consoleMaintenance(req: MaintenanceRequest) {
  const service = await farmService();
  return setNodeMaintenance({ setting: clusterSetting(), kernel: service.kernel }, req);
}
