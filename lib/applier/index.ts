export { applyFarms, flushFarms, validateFarms, type ApplyOptions, type ApplyResult } from "./apply.ts";
export { driftReport, type DriftReport, type FarmDrift } from "./drift.ts";
export { ApplyError, FarmValidationError } from "./errors.ts";
export { connectionStats, cutConnections, parseConntrack, type ConnectionStats, type MarkStats } from "./conntrack.ts";
export { readNatfarmTables, readTables, type TablesSnapshot, type TablesChain, type TablesRule } from "./tables.ts";
