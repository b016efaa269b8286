/** What the CLI's commands load when they run (see main.ts): the engine, the schema and the kernel port. */
export { parseFarmFile, readFarmFile } from "../farms/file.ts";
export { reportDigests } from "../applier/apply.ts";
export { resolveMarks } from "../farms/resolve.ts";
export { farmWarnings } from "../farms/warnings.ts";
export { keepRenderedFarms, renderFullPayload, renderRuleset } from "../netfilter/render.ts";
export { kernel, withEngine } from "../kernel/index.ts";
import type { ResolvedFarm } from "../farms/schema.ts";
import { renderFullPayload as renderNftFull, renderNft } from "../nftables/render.ts";
export const renderNftPayload = (farms: readonly ResolvedFarm[]) => renderNftFull(renderNft(farms));
export { formatTables } from "./format.ts";
