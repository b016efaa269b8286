import { AsyncLocalStorage } from "node:async_hooks";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { compareConfigs, type FarmDiff } from "./config-diff.ts";
import { latestRevisionId, readAllConfig, readConfig, SUMMARY_SELECT, toRevisionSummary, type ConfigFarm, type RevisionSummary } from "./config-history.ts";
import type { Engine } from "../kernel/engine.ts";
import type { KernelPort } from "../kernel/port.ts";
import type { FarmRuleDrift } from "../applier/drift.ts";
import { FarmSchema, type ResolvedFarm } from "../farms/schema.ts";
import type { Target } from "../privileged/target.ts";
import { rowToResolved, type FarmRow } from "./farm-rows.ts";

/**
 * Staged changes (pfSense's and OPNsense's "apply changes"): with the
 * installation setting on, an edit changes the desired state only (a
 * revision, pending), the kernel keeps what was last applied, and one
 * Apply changes commits every pending change in one kernel transaction;
 * Discard brings the desired state back to what the kernel holds and leaves
 * the kernel alone. An apply can be made under a savepoint: unless
 * confirmed before its deadline, the configuration before it comes back by
 * itself (the health checker's loop watches the deadline, persisted here,
 * so a closed browser or a restarted console does not lose it).
 *
 * The state is one row (StagedState, id 1). What the kernel holds is kept
 * as the whole configuration (`applied`), not as a revision number alone:
 * Discard must work even once that revision has been pruned.
 */
export interface StagedRow {
  enabled: boolean;
  appliedRevision: number | null;
  applied: ConfigFarm[] | null;
  savepointUntil: Date | null;
  savepointConfig: ConfigFarm[] | null;
  savepointRevision: number | null;
  savepointOutcome: string | null;
}

const parseFarms = (text: string | null): ConfigFarm[] | null => (text ? (JSON.parse(text) as { farms: ConfigFarm[] }).farms : null);
export const farmsText = (farms: ConfigFarm[]) => JSON.stringify({ farms });

export async function readStaged(db: PrismaClient): Promise<StagedRow> {
  const r = await db.stagedState.findUnique({ where: { id: 1 } });
  return {
    enabled: r?.enabled ?? false,
    appliedRevision: r?.appliedRevision ?? null,
    applied: parseFarms(r?.applied ?? null),
    savepointUntil: r?.savepointUntil ?? null,
    savepointConfig: parseFarms(r?.savepointConfig ?? null),
    savepointRevision: r?.savepointRevision ?? null,
    savepointOutcome: r?.savepointOutcome ?? null,
  };
}

/** Only whether staging is on: one indexed read per mutation. */
export async function stagingOn(db: PrismaClient): Promise<boolean> {
  return (await db.stagedState.findUnique({ where: { id: 1 }, select: { enabled: true } }))?.enabled ?? false;
}

export async function writeStaged(db: PrismaClient, data: Partial<{ enabled: boolean; appliedRevision: number | null; applied: string | null; savepointUntil: Date | null; savepointConfig: string | null; savepointRevision: number | null; savepointOutcome: string | null }>): Promise<Date> {
  const r = await db.stagedState.upsert({ where: { id: 1 }, create: { id: 1, ...data }, update: data, select: { updatedAt: true } });
  // updatedAt keys the caches below; dropped here too, for two writes within one millisecond.
  pendingCache.delete(db);
  appliedCache.delete(db);
  return r.updatedAt;
}

/** The kernel now holds the desired state as it is (an apply, a discard, staging turned on). */
export async function markAllApplied(db: PrismaClient, extra: Parameters<typeof writeStaged>[1] = {}): Promise<void> {
  const [config, head] = await Promise.all([readAllConfig(db), latestRevisionId(db)]);
  await writeStaged(db, { applied: farmsText([...config.values()]), appliedRevision: head, ...extra });
}

export interface PendingView {
  /** The installation setting. */
  enabled: boolean;
  /** The asking console session stages its edits (Session.stageChanges). */
  session: boolean;
  /** What the kernel holds is tracked (some staging is on, or changes are pending): the pending set below is meaningful. */
  tracking: boolean;
  /** Revisions after the one the kernel holds that touched a pending farm, newest first. */
  revisions: RevisionSummary[];
  /** What Apply changes would do, farm by farm: words, JSON and the rules it adds and removes (rendered from the configuration last applied). */
  diffs: FarmDiff[];
  /** The farms Apply changes writes (created, changed, deleted). */
  farms: string[];
  savepoint: { until: Date; revision: number | null } | null;
  lastOutcome: string | null;
  /** The same against the kernel as it is now (pendingLive); absent when not asked for or nothing is pending. */
  live?: LiveDiff;
  /** The kernel is being read for `live` and the caller did not wait (the page shows the rendered diff and asks again). */
  liveReading?: boolean;
}

type Pending = Pick<PendingView, "revisions" | "diffs" | "farms">;
const NOTHING: Pending = { revisions: [], diffs: [], farms: [] };

/**
 * The pending set is asked for by every page (the banner), so it must not
 * cost a comparison of every farm: it depends only on the StagedState row
 * (its updatedAt moves with every write of it) and the newest revision, and
 * is kept per process under that key. Computing it reads only the revisions
 * after the one the kernel holds and the farms they touched (one query each),
 * and compares just those with what the kernel was last given; the whole set
 * is compared only when those revisions are no longer all kept.
 */
const pendingCache = new WeakMap<PrismaClient, { key: string; value: Promise<Pending> }>();
const appliedCache = new WeakMap<PrismaClient, { key: number; farms: Map<string, ConfigFarm> | null }>();

/** The configuration the kernel was last given, parsed once per write of the row; null: nothing is tracked (no staging on, nothing pending). */
async function appliedFarms(db: PrismaClient, updatedAt: Date): Promise<Map<string, ConfigFarm> | null> {
  const hit = appliedCache.get(db);
  if (hit && hit.key === updatedAt.getTime()) return hit.farms;
  const r = await db.stagedState.findUnique({ where: { id: 1 }, select: { applied: true, updatedAt: true } });
  const list = parseFarms(r?.applied ?? null);
  const farms = list ? new Map(list.map((f) => [f.name, f])) : null;
  if (r) appliedCache.set(db, { key: r.updatedAt.getTime(), farms });
  return farms;
}

const STATE_SELECT = { enabled: true, appliedRevision: true, savepointUntil: true, savepointRevision: true, savepointOutcome: true, updatedAt: true } as const;

export async function pendingView(db: PrismaClient, engine: Engine = "iptables", sessionId: string | null = currentStagingSession()): Promise<PendingView> {
  const [s, session] = await Promise.all([db.stagedState.findUnique({ where: { id: 1 }, select: STATE_SELECT }), sessionStages(db, sessionId)]);
  const savepoint = s?.savepointUntil ? { until: s.savepointUntil, revision: s.savepointRevision } : null;
  const lastOutcome = s?.savepointOutcome ?? null;
  const base = { enabled: s?.enabled ?? false, session };
  if (!s || !(await appliedFarms(db, s.updatedAt))) return { ...base, tracking: false, ...NOTHING, savepoint, lastOutcome };
  const head = await latestRevisionId(db);
  const key = `${engine}|${s.updatedAt.getTime()}|${s.appliedRevision}|${head}`;
  let hit = pendingCache.get(db);
  if (!hit || hit.key !== key) {
    const value = computePending(db, engine, s.appliedRevision, head, s.updatedAt);
    hit = { key, value };
    pendingCache.set(db, hit);
    const entry = hit;
    value.catch(() => pendingCache.get(db) === entry && pendingCache.delete(db));
  }
  return { ...base, tracking: true, ...(await hit.value), savepoint, lastOutcome };
}

async function computePending(db: PrismaClient, engine: Engine, appliedRevision: number | null, head: number | null, updatedAt: Date): Promise<Pending> {
  if (head === null || head === appliedRevision) return NOTHING;
  const applied = (await appliedFarms(db, updatedAt)) ?? new Map<string, ConfigFarm>();
  const rows = await db.configRevision.findMany({ where: appliedRevision === null ? {} : { id: { gt: appliedRevision } }, orderBy: { id: "desc" }, take: 1001, select: SUMMARY_SELECT });
  const revisions = rows.slice(0, 1000).map(toRevisionSummary);
  // Every revision since the applied one still kept: only the farms they touched can differ.
  const complete = appliedRevision !== null && rows.length <= 1000 && (await db.configRevision.findUnique({ where: { id: appliedRevision }, select: { id: true } })) !== null;
  let diffs: FarmDiff[];
  if (complete) {
    const names = [...new Set(revisions.flatMap((r) => r.farms))];
    const now = await readConfig(db, names);
    diffs = compareConfigs(names.flatMap((n) => (applied.has(n) ? [applied.get(n)!] : [])), [...now.values()].filter((f): f is ConfigFarm => f !== null), engine);
  } else {
    diffs = compareConfigs([...applied.values()], [...(await readAllConfig(db)).values()], engine);
  }
  const farms = diffs.map((d) => d.farm);
  const pending = new Set(farms);
  return { revisions: revisions.filter((r) => r.farms.some((f) => pending.has(f))), diffs, farms };
}

/** The configuration the kernel was last given, from the per-write cache (null: nothing is tracked). */
async function trackedFarms(db: PrismaClient): Promise<Map<string, ConfigFarm> | null> {
  const r = await db.stagedState.findUnique({ where: { id: 1 }, select: { updatedAt: true } });
  return r ? appliedFarms(db, r.updatedAt) : null;
}

/** The configuration the kernel was last given for one farm (null: none). */
export async function appliedFarm(db: PrismaClient, name: string): Promise<ConfigFarm | null> {
  return (await trackedFarms(db))?.get(name) ?? null;
}

// ---------------------------------------------------------------- against the live kernel

/** One pending farm against the kernel now: the lines Apply changes adds and removes, and whether the kernel still holds what was last applied. */
export interface LiveFarmDiff {
  farm: string;
  add: string[];
  remove: string[];
  /** The kernel holds neither what natfarm last applied for this farm nor that with the health checker's verdicts (a rule deleted or added by hand). */
  drifted: boolean;
}

export interface LiveDiff {
  farms: LiveFarmDiff[];
  /** Pending farms beyond the cap, shown with the rendered diff only. */
  omitted: string[];
  /** The kernel could not be read (the rendered diff stands). */
  error: string | null;
}

/** The rendered diff's added and removed rule lines in the drift comparison's form ("table chain spec"). */
function renderedDelta(rules: { op: string; line: string }[]): { add: string[]; remove: string[] } {
  const add: string[] = [];
  const remove: string[] = [];
  let table = "";
  for (const l of rules) {
    if (l.line.startsWith("*")) {
      table = l.line.slice(1);
      continue;
    }
    if (l.op === " " || !l.line.startsWith("-A ")) continue;
    (l.op === "+" ? add : remove).push(`${table} ${l.line.slice(3)}`);
  }
  return { add, remove };
}

const sorted = (xs: string[]) => [...xs].sort();
function sameDelta(d: FarmRuleDrift, r: { add: string[]; remove: string[] } | undefined): boolean {
  return !!r && JSON.stringify(sorted(d.missing)) === JSON.stringify(sorted(r.add)) && JSON.stringify(sorted(d.unexpected)) === JSON.stringify(sorted(r.remove));
}

/** Pending farms read live per view: each costs a scoped read of its own chains (iptables) or shares one read of natfarm's table (nftables). */
export const LIVE_FARMS_MAX = 20;

const asResolved = (f: ConfigFarm): ResolvedFarm | null => {
  const parsed = FarmSchema.safeParse(f);
  return parsed.success ? (parsed.data as ResolvedFarm) : null;
};
/** A farm that should have no rules (deleted, or not yet applied): the same name stopped renders none, so every live line of it is "unexpected". */
const noRules = (f: ResolvedFarm): ResolvedFarm => ({ ...f, status: "stopped" });

/**
 * For the pending farms (at most LIVE_FARMS_MAX): what Apply changes
 * would add to and remove from the kernel as it is now, asked of the kernel
 * port with each farm's own drift comparison (the agent reads only that
 * farm's chains; nftables: natfarm's table once). Desired is the farm's row
 * as Apply writes it (health verdicts included); "drifted" compares the
 * kernel with the configuration last applied, with and without today's
 * health verdicts (a verdict on a farm without pending changes was applied
 * at once, one on a pending farm waits), so only a change made outside
 * natfarm counts.
 */
export async function pendingLive(deps: { db: PrismaClient; kernel: KernelPort; target: Target }, view: PendingView): Promise<LiveDiff> {
  const names = view.farms.slice(0, LIVE_FARMS_MAX);
  const omitted = view.farms.slice(LIVE_FARMS_MAX);
  if (names.length === 0) return { farms: [], omitted, error: null };
  const rows = new Map(((await deps.db.farm.findMany({ where: { name: { in: names } }, include: { backends: { orderBy: { position: "asc" } } } })) as FarmRow[]).map((r) => [r.name, r]));
  const tracked = await trackedFarms(deps.db);
  const applied = names.map((n) => tracked?.get(n) ?? null);
  const plan = names.map((name, i) => {
    const row = rows.get(name);
    const was = applied[i] ? asResolved(applied[i]!) : null;
    const want = row ? rowToResolved(row) : was ? noRules(was) : null;
    const last = was ?? (want ? noRules(want) : null);
    // The applied farm with the backends the checker has down now left out, as an apply at once would have written it.
    const downs = new Set(row?.backends.filter((b) => b.state === "down").map((b) => b.mark) ?? []);
    const lastHealth = last && downs.size ? { ...last, backends: last.backends.map((b) => (downs.has(b.mark) && (b.state ?? "up") === "up" ? { ...b, state: "down" as const } : b)) } : null;
    return { name, want, last, lastHealth };
  });
  try {
    const ask = async (farms: (ResolvedFarm | null)[]): Promise<(FarmRuleDrift | null)[]> => {
      if (deps.kernel.engine === "nftables") {
        const list = farms.filter((f): f is ResolvedFarm => f !== null);
        if (list.length === 0) return farms.map(() => null);
        const m = await deps.kernel.driftOfFarms(deps.target, list);
        return farms.map((f) => (f ? (m.get(f.name) ?? null) : null));
      }
      const out: (FarmRuleDrift | null)[] = [];
      // A few at a time: each is a handful of iptables reads in the agent.
      for (let i = 0; i < farms.length; i += 4) out.push(...(await Promise.all(farms.slice(i, i + 4).map((f) => (f ? deps.kernel.driftOfFarm(deps.target, f) : null)))));
      return out;
    };
    const toWant = await ask(plan.map((p) => p.want));
    // What the live comparison found equals the rendered one (last applied → desired): then the kernel holds exactly what was
    // last applied (the same lines, the same differences), and the second read is not needed. iptables only: its lines and the
    // renderer's are the same text; otherwise, or when they differ (a health verdict, drift), the kernel is asked.
    const rendered = new Map(view.diffs.map((d) => [d.farm, renderedDelta(d.rules)]));
    const settled = plan.map((p, i) => deps.kernel.engine !== "nftables" && toWant[i] !== null && sameDelta(toWant[i]!, rendered.get(p.name)));
    const toLast = await ask(plan.map((p, i) => (settled[i] ? null : p.last)));
    const needHealth = plan.map((p, i) => (toLast[i] && !toLast[i]!.inSync ? p.lastHealth : null));
    const toHealth = needHealth.some(Boolean) ? await ask(needHealth) : needHealth.map(() => null);
    const farms = plan.map((p, i): LiveFarmDiff => {
      const d = toWant[i];
      const drifted = settled[i] ? false : toLast[i] ? !toLast[i]!.inSync && !(toHealth[i]?.inSync ?? false) : false;
      return { farm: p.name, add: d?.missing ?? [], remove: d?.unexpected ?? [], drifted };
    });
    return { farms, omitted, error: null };
  } catch (e) {
    return { farms: [], omitted, error: (e as Error).message };
  }
}

/** Whether a farm differs from what the kernel holds (a health verdict on a farm without pending changes applies at once). */
export async function farmPending(db: PrismaClient, name: string, now: ConfigFarm | null): Promise<boolean> {
  return JSON.stringify(await appliedFarm(db, name)) !== JSON.stringify(now);
}

// ---------------------------------------------------------------- per session

/*
 * A console session can stage its own edits while the installation setting
 * is off (Session.stageChanges, gone with the session's row). Pending
 * changes are still shared state: they sit in the one desired
 * configuration, every page's banner shows them (with who made them), and
 * Apply changes or Discard by any operator commits or drops all of them.
 * While anything stages or is pending, what the kernel holds is tracked
 * (StagedState.applied), also for edits applied at once, so the pending
 * set stays exactly the farms that differ from the kernel. An edit applied
 * at once to a farm with pending changes would apply them too: it is
 * refused, naming who staged what (conflictMessage); a health verdict on
 * such a farm waits for the apply, as with the installation setting.
 */
const shared = globalThis as unknown as { natfarmStagingSessions?: AsyncLocalStorage<string> };
const sessions = (shared.natfarmStagingSessions ??= new AsyncLocalStorage<string>());

/** The console session the changes made inside `run` come from (the server actions' audited() sets it; the API and the CLI set none). */
export function withStagingSession<T>(sessionId: string, run: () => Promise<T>): Promise<T> {
  return sessions.run(sessionId, run);
}

export function currentStagingSession(): string | null {
  return sessions.getStore() ?? null;
}

async function sessionStages(db: PrismaClient, sessionId: string | null): Promise<boolean> {
  if (!sessionId || sessionId.startsWith("token:")) return false;
  const r = await db.session.findUnique({ where: { id: sessionId }, select: { stageChanges: true, expiresAt: true } });
  return !!r?.stageChanges && r.expiresAt > new Date();
}

/** Logins staging now (their row is deleted at logout and when found expired; one past its end does not count). */
async function stagingSessions(db: PrismaClient): Promise<number> {
  return db.session.count({ where: { stageChanges: true, expiresAt: { gt: new Date() } } });
}

export interface StagingMode {
  /** This change is staged (installation setting, or the change's session stages). */
  staged: boolean;
  /** What the kernel holds is tracked: an edit applied at once must keep it, and must not apply someone's pending changes. */
  tracking: boolean;
}

/** Per change: one indexed read (two with a console session); the tracked configuration comes from the per-write cache. */
export async function stagingMode(db: PrismaClient, sessionId: string | null = currentStagingSession()): Promise<StagingMode> {
  const [s, session] = await Promise.all([db.stagedState.findUnique({ where: { id: 1 }, select: { enabled: true, updatedAt: true } }), sessionStages(db, sessionId)]);
  const tracking = !!s && (await appliedFarms(db, s.updatedAt)) !== null;
  return { staged: (s?.enabled ?? false) || session, tracking };
}

/** Of `names`, the farms whose configuration differs from what the kernel was last given (only while tracking). */
export async function pendingAmong(db: PrismaClient, names: string[]): Promise<string[]> {
  const applied = await trackedFarms(db);
  if (!applied || names.length === 0) return [];
  const now = await readConfig(db, names);
  return names.filter((n) => JSON.stringify(applied.get(n) ?? null) !== JSON.stringify(now.get(n) ?? null));
}

/** Why an edit applied at once cannot touch these farms: who staged what on them (null: none has pending changes). */
export async function conflictMessage(db: PrismaClient, names: string[]): Promise<string | null> {
  const pending = await pendingAmong(db, names);
  if (pending.length === 0) return null;
  const s = await db.stagedState.findUnique({ where: { id: 1 }, select: { appliedRevision: true } });
  const rows = await db.configRevision.findMany({ where: s?.appliedRevision != null ? { id: { gt: s.appliedRevision } } : {}, orderBy: { id: "asc" }, take: 1000, select: SUMMARY_SELECT });
  const set = new Set(pending);
  const by = rows.map(toRevisionSummary).filter((r) => r.farms.some((f) => set.has(f)));
  const who = by.slice(-5).map((r) => `#${r.id} ${r.summary} by ${r.author}`);
  const farms = pending.length === 1 ? `Farm ${pending[0]} has` : `Farms ${pending.slice(0, 5).join(", ")}${pending.length > 5 ? ", …" : ""} have`;
  return `${farms} staged changes not applied yet (${who.length ? who.join("; ") : "made outside the kept history"}${by.length > 5 ? `; ${by.length - 5} more` : ""}): applying this change at once would apply them too. Apply changes or Discard them first, or stage this change as well (Stage my changes).`;
}

/** After an edit applied at once while tracking: the kernel holds these farms as configured now. */
export async function trackApplied(db: PrismaClient, names: string[]): Promise<void> {
  const applied = await trackedFarms(db);
  if (!applied || names.length === 0) return;
  const now = await readConfig(db, names);
  const next = new Map(applied);
  let changed = false;
  for (const n of names) {
    const f = now.get(n) ?? null;
    if (JSON.stringify(next.get(n) ?? null) === JSON.stringify(f)) continue;
    changed = true;
    if (f) next.set(n, f);
    else next.delete(n);
  }
  if (!changed) return;
  const at = await writeStaged(db, { applied: farmsText([...next.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) });
  // What was just written, kept parsed: the next edit at once does not parse the whole configuration again.
  appliedCache.set(db, { key: at.getTime(), farms: next });
}

/** Nothing stages any more and nothing is pending or waiting: stop tracking (edits cost nothing extra again). */
export async function maybeStopTracking(db: PrismaClient, engine: Engine = "iptables"): Promise<void> {
  const s = await db.stagedState.findUnique({ where: { id: 1 }, select: { enabled: true, savepointUntil: true } });
  if (!s || s.enabled || s.savepointUntil) return;
  if ((await stagingSessions(db)) > 0) return;
  if ((await pendingView(db, engine, null)).farms.length > 0) return;
  await writeStaged(db, { applied: null, appliedRevision: null });
}

/** A console session's own staging on or off. On, with nothing tracked yet: the kernel is taken to hold the desired state as it is. */
export async function setSessionStaging(db: PrismaClient, sessionId: string, on: boolean, engine: Engine = "iptables"): Promise<{ ok: boolean; message: string }> {
  const n = await db.session.updateMany({ where: { id: sessionId, expiresAt: { gt: new Date() } }, data: { stageChanges: on } });
  if (n.count === 0) return { ok: false, message: "This login's session has ended: sign in again." };
  if (on) {
    if ((await trackedFarms(db)) === null) await markAllApplied(db);
    return { ok: true, message: "Your edits are staged from now on (this login only): they wait for Apply changes; other users' edits are still applied at once." };
  }
  await maybeStopTracking(db, engine);
  return { ok: true, message: "Your edits are applied at once again. Changes already staged stay pending until someone applies or discards them." };
}

/** NATFARM_SAVEPOINT_SECONDS: how long an apply under a savepoint waits for its confirmation (default 60, 2 to 3600). */
export function savepointSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.NATFARM_SAVEPOINT_SECONDS ?? "");
  return Number.isInteger(n) && n >= 2 && n <= 3600 ? n : 60;
}
