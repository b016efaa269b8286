/**
 * The lab: network namespaces wired only to each other (client, load
 * balancer, backends) plus a traffic generator, used as test bed for the rule
 * engine. See DESIGN.md, "The lab".
 */
export { LAB, LabInputError, labNames, backendIp, backendNsName, uniqueLabName } from "./names.ts";
export type { LabNames } from "./names.ts";
export {
  labUp,
  labDown,
  labStatus,
  labList,
  labSweepOrphans,
  labEnsureVip,
  labEnsureClientAddresses,
  labRemoveVip,
  labStopBackendServer,
  labStartBackendServer,
  LabExistsError,
  LabNotFoundError,
} from "./topology.ts";
export type { LabInfo, LabBackend } from "./topology.ts";
export { labTraffic, labHold, TrafficResultSchema, HoldResultSchema } from "./traffic.ts";
export type { TrafficResult, HoldResult } from "./traffic.ts";
export { labStateDir } from "./servers.ts";
