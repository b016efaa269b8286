// Regenerates tests/golden/*.rules from the renderer. Review the diff before
// committing: the golden files are the contract the renderer is tested against.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { FarmListSchema } from "../lib/farms/schema.ts";
import { resolveMarks } from "../lib/farms/resolve.ts";
import { renderFullPayload, renderRuleset } from "../lib/netfilter/render.ts";
import { DISPATCH_FARMS } from "../tests/helpers/dispatch-farms.ts";
import { guideFarm, MIXED_FARMS, SCHEDULER_FARMS } from "../tests/helpers/farms.ts";

const dir = path.join(import.meta.dirname, "..", "tests", "golden");
const render = (farms: unknown[]) => renderFullPayload(renderRuleset(resolveMarks(FarmListSchema.parse(farms))));
for (const mode of ["dnat", "nat"] as const) writeFileSync(path.join(dir, `guide-${mode}.rules`), render([guideFarm(mode)]));
writeFileSync(path.join(dir, "mixed.rules"), render(MIXED_FARMS));
writeFileSync(path.join(dir, "schedulers.rules"), render(SCHEDULER_FARMS));
writeFileSync(path.join(dir, "dispatch.rules"), render(DISPATCH_FARMS));
