import { applyFarms } from "../applier/apply.ts";
import { connectionStats, cutConnections } from "../applier/conntrack.ts";
import { driftFromView, driftOfFarm, driftReport } from "../applier/drift.ts";
import { checkLocalVips } from "../applier/local-vips.ts";
import { readFull } from "../applier/read.ts";
import { readNatfarmTables, readTables } from "../applier/tables.ts";
import {
  labDown,
  labEnsureClientAddresses,
  labEnsureVip,
  labHold,
  labRemoveVip,
  labStartBackendServer,
  labStatus,
  labStopBackendServer,
  labTraffic,
  labUp,
} from "../lab/index.ts";
import { clusterLabMaintenance, clusterLabReading } from "../lab/cluster-console.ts";
import type { KernelPort } from "./port.ts";

/** The kernel from this process: only where it may run privileged programs (root). */
export const directKernel: KernelPort = {
  via: "direct",
  applyFarms: (input, opts) => applyFarms(input, opts),
  driftReport,
  driftOfFarm,
  async driftOfFarms(target, farms) {
    return driftFromView(await readFull(target), farms);
  },
  readTables: (target) => readTables(target),
  readNatfarmTables: (target, opts) => readNatfarmTables(target, opts),
  connectionStats: (target) => connectionStats(target),
  cutConnections: (target, mark) => cutConnections(target, mark),
  checkLocalVips: (target, farms) => checkLocalVips(target, farms, 10_000),
  ping: async () => {},
  lab: {
    up: labUp,
    down: labDown,
    status: labStatus,
    traffic: labTraffic,
    hold: labHold,
    ensureVip: labEnsureVip,
    removeVip: labRemoveVip,
    ensureClientAddresses: labEnsureClientAddresses,
    stopBackendServer: labStopBackendServer,
    startBackendServer: labStartBackendServer,
  },
  cluster: { status: clusterLabReading, maintenance: clusterLabMaintenance },
};
