import "server-only";
import { farmService, forgetDrift } from "@/lib/console/farm-service";
import { diffText } from "@/lib/service/config-diff";
import type { PendingView } from "@/lib/service/staging";
import { resultAnswer, type ApiAnswer } from "./farms.ts";
import { parseBody, parseQuery } from "./input.ts";
import { answer, asCaller, auditMutation, authorOf, caller, json, messageOf, read, refuse, type Caller } from "./route.ts";
import { NoBodySchema, StagedApplyBodySchema, StagedQuerySchema, StagingSettingSchema } from "./schemas.ts";
import type { Permission } from "@/lib/auth/roles";
import type { MutationResult } from "@/lib/service/result";

/**
 * /api/v1/staged…: staged changes through the same farm service calls as
 * the console's banner (lib/actions/staging.ts) and `natfarm staged`. A
 * token has no console session, so what the API stages follows the
 * installation setting. Apply, Discard and the savepoint's confirmation
 * need the operator role, the setting admin; each is audited.
 */
export function stagedView(v: PendingView) {
  return {
    enabled: v.enabled,
    tracking: v.tracking,
    revisions: v.revisions.map((r) => ({ id: r.id, at: r.at.toISOString(), author: r.author, via: r.via as "console" | "api" | "cli" | "system", summary: r.summary, farms: r.farms })),
    diffs: v.diffs,
    live: v.live ?? null,
    savepoint: v.savepoint ? { until: v.savepoint.until.toISOString(), revision: v.savepoint.revision } : null,
    lastOutcome: v.lastOutcome,
    text: diffText(v.diffs),
  };
}

export function getStaged(req: Request): Promise<Response> {
  return read(async () => {
    const q = parseQuery(req.url, StagedQuerySchema);
    if ("refusal" in q) return q.refusal;
    return json(stagedView(await (await farmService()).staging({ live: q.data.live === "1" })));
  });
}

/** The common part of the four changes: who, which role, the body, the audit entry. */
async function change<B>(req: Request, o: { permission: Permission; what: string; action: string; body: { parse: (req: Request) => Promise<{ data: B } | { refusal: ApiAnswer }> }; run: (c: Caller, body: B) => Promise<MutationResult> }): Promise<Response> {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, o.permission, o.what);
  if (no) return no;
  const done = async (a: ApiAnswer) => {
    await auditMutation(c, { action: o.action, farm: null, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const body = await o.body.parse(req);
  if ("refusal" in body) return done(body.refusal);
  const r = await asCaller(c, () => o.run(c, body.data));
  forgetDrift();
  return done(resultAnswer(r));
}

const noBody = { parse: (req: Request) => parseBody(req, NoBodySchema, { optional: true }) };

export const applyStaged = (req: Request) =>
  change(req, {
    permission: "operate",
    what: "applying the staged changes",
    action: "apply staged changes",
    body: { parse: (r) => parseBody(r, StagedApplyBodySchema, { optional: true }) },
    run: async (_c, b) => (await farmService()).applyStaged({ savepoint: b.savepoint }),
  });

export const discardStaged = (req: Request) =>
  change(req, { permission: "operate", what: "discarding the staged changes", action: "discard staged changes", body: noBody, run: async () => (await farmService()).discardStaged() });

export const confirmStaged = (req: Request) =>
  change(req, { permission: "operate", what: "confirming the applied changes", action: "confirm savepoint", body: noBody, run: async (c) => (await farmService()).confirmSavepoint(authorOf(c).name) });

export const setStaging = (req: Request) =>
  change(req, {
    permission: "administer",
    what: "turning staged changes on or off",
    action: "set staging",
    body: { parse: (r) => parseBody(r, StagingSettingSchema, { what: '{"enabled": true|false}' }) },
    run: async (_c, b) => (await farmService()).setStaging(b.enabled),
  });
