export { applyNftFarms, applyNftValidated, driftNft, flushNft, forgetRemembered, INJECTED_FAULT, NftApplyError, readNft, type NftApplyOptions, type NftApplyResult, type NftDriftReport } from "./apply.ts";
export { parseNftJson, type LiveNft } from "./json.ts";
export { renderFarmText, renderFullPayload, renderNft } from "./render.ts";
