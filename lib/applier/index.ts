export { applyFarms, flushFarms, validateFarms, type ApplyOptions, type ApplyResult } from "./apply.ts";
export { driftFromView, driftOfFarm, driftReport, type DriftReport, type FarmDrift, type FarmRuleDrift } from "./drift.ts";
export { ApplyError, FarmValidationError } from "./errors.ts";
export { connectionStats, cutConnections, parseConntrack, type ConnectionStats, type MarkStats } from "./conntrack.ts";
export { readNatfarmTables, readTables, type TablesSnapshot, type TablesChain, type TablesRule } from "./tables.ts";
