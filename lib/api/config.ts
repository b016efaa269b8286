import "server-only";
import { farmService, forgetDrift } from "@/lib/console/farm-service";
import { diffText } from "@/lib/service/config-diff";
import type { Revision, RevisionSummary } from "@/lib/service/config-history";
import { readJsonBody, resultAnswer, type ApiAnswer } from "./farms.ts";
import { parseBody, parseQuery } from "./input.ts";
import { answer, asCaller, auditMutation, caller, json, messageOf, read, refuse } from "./route.ts";
import { NoBodySchema, RevisionDiffQuerySchema, RevisionsQuerySchema } from "./schemas.ts";
import { OPERATIONS } from "./operations.ts";

/**
 * /api/v1/config/…: the configuration history through the farm service
 * (lib/service/config-history.ts), as the History page and `natfarm config`
 * use it. Reads for any role; revert and restore for admins (they can
 * create, change and delete any farm), audited like every change.
 */
type Ctx = { params: Promise<Record<string, string>> };

const summaryView = (r: RevisionSummary) => ({ id: r.id, at: r.at.toISOString(), author: r.author, via: r.via as "console" | "api" | "cli" | "system", summary: r.summary, farms: r.farms });
const revisionView = (r: Revision) => ({ ...summaryView(r), changes: r.changes });

function revisionParam(value: string | undefined): { id: number } | { refusal: ApiAnswer } {
  if (!value || !/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > 2_147_483_647) {
    return { refusal: { status: 400, body: { error: `the revision must be a whole number from 1, got "${String(value).slice(0, 40)}"`, issues: [{ path: "id", message: "a revision number (a whole number from 1)" }] } } };
  }
  return { id: Number(value) };
}

const missing = (id: number): ApiAnswer => ({ status: 404, body: { error: `There is no revision ${id} (the history keeps the newest revisions only).`, issues: [] } });

export async function listRevisions(req: Request): Promise<Response> {
  return read(async () => {
    const q = parseQuery(req.url, RevisionsQuerySchema);
    if ("refusal" in q) return q.refusal;
    const revs = await (await farmService()).revisions({ limit: q.data.limit, before: q.data.before });
    return json({ revisions: revs.map(summaryView), next: revs.length === q.data.limit ? (revs[revs.length - 1]?.id ?? null) : null });
  });
}

export async function getRevision(ctx: Ctx): Promise<Response> {
  return read(async () => {
    const p = revisionParam((await ctx.params).id);
    if ("refusal" in p) return p.refusal;
    const r = await (await farmService()).revision(p.id);
    return r ? json(revisionView(r)) : missing(p.id);
  });
}

export async function getRevisionConfig(ctx: Ctx): Promise<Response> {
  return read(async () => {
    const p = revisionParam((await ctx.params).id);
    if ("refusal" in p) return p.refusal;
    try {
      const farms = await (await farmService()).configAt(p.id);
      return new Response(`${JSON.stringify({ farms }, null, 2)}\n`, {
        headers: { "Cache-Control": "no-store", "Content-Type": "application/json; charset=utf-8", "Content-Disposition": `attachment; filename="natfarm-revision-${p.id}.json"` },
      });
    } catch (e) {
      if ((e as Error).name === "RevisionGone") return missing(p.id);
      throw e;
    }
  });
}

export async function diffRevision(req: Request, ctx: Ctx): Promise<Response> {
  return read(async () => {
    const p = revisionParam((await ctx.params).id);
    if ("refusal" in p) return p.refusal;
    const q = parseQuery(req.url, RevisionDiffQuerySchema);
    if ("refusal" in q) return q.refusal;
    const r = await (await farmService()).compare(p.id, q.data.to ?? null);
    if (!("diffs" in r)) return resultAnswer(r);
    return json({ from: p.id, to: q.data.to ?? null, diffs: r.diffs, text: diffText(r.diffs) });
  });
}

export async function getBackup(): Promise<Response> {
  return read(async () => {
    const backup = await (await farmService()).backup();
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
    return new Response(`${JSON.stringify(backup, null, 2)}\n`, {
      headers: { "Cache-Control": "no-store", "Content-Type": "application/json; charset=utf-8", "Content-Disposition": `attachment; filename="natfarm-backup-${stamp}.json"` },
    });
  });
}

export async function revertRevision(req: Request, ctx: Ctx): Promise<Response> {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "administer", "reverting the configuration to a revision");
  if (no) return no;
  const raw = (await ctx.params).id;
  const done = async (a: ApiAnswer) => {
    await auditMutation(c, { action: `revert to revision ${String(raw).slice(0, 12)}`, farm: null, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const p = revisionParam(raw);
  if ("refusal" in p) return done(p.refusal);
  const body = await parseBody(req, NoBodySchema, { optional: true });
  if ("refusal" in body) return done(body.refusal);
  const r = await asCaller(c, async () => (await farmService()).revert(p.id));
  forgetDrift();
  return done(resultAnswer(r));
}

const RESTORE_LIMIT = OPERATIONS.find((o) => o.id === "restoreBackup")!.bodyLimit!;

export async function restoreBackup(req: Request): Promise<Response> {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, "administer", "restoring the configuration from a backup");
  if (no) return no;
  const done = async (a: ApiAnswer) => {
    await auditMutation(c, { action: "restore backup", farm: null, status: a.status, message: messageOf(a) });
    return answer(a);
  };
  const body = await readJsonBody(req, RESTORE_LIMIT);
  if ("refusal" in body) return done(body.refusal);
  const r = await asCaller(c, async () => (await farmService()).restore(JSON.stringify(body.json), "the uploaded backup"));
  forgetDrift();
  return done(resultAnswer(r));
}
