/** What the CLI's commands load when they run (see main.ts): the engine, the schema and the kernel port. */
export { readFarmFile } from "../farms/file.ts";
export { resolveMarks } from "../farms/resolve.ts";
export { farmWarnings } from "../farms/warnings.ts";
export { renderFullPayload, renderRuleset } from "../netfilter/render.ts";
export { kernel } from "../kernel/index.ts";
export { formatTables } from "./format.ts";
