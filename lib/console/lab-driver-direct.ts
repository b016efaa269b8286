import { labEnsureVip, labStatus, labTraffic, labUp } from "../lab/index.ts";
import type { LabDriver } from "./lab-service.ts";

/** The lab in this process (the console, the start script, the CLI and tests). */
export const directLabDriver: LabDriver = {
  status: (name) => labStatus({ name }),
  up: (name, backends) => labUp({ name, backends }),
  async traffic(o) {
    await labEnsureVip({ name: o.name, vip: o.vip });
    return labTraffic({ ...o, concurrency: 32, timeoutMs: 2000 });
  },
};
