import { resolveMarks } from "../farms/resolve.ts";
import type { Farm, FarmInput, ResolvedFarm } from "../farms/schema.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { kernel, type KernelPort } from "../kernel/index.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { applyAllFarms, applyFarm, type ApplyCause, type ApplyContext } from "./apply-farms.ts";
import { retryOnConflict } from "./conflict.ts";
import { invalid, kernelFailure, localVipErrors, notFound, refused, unavailable, writeConflict } from "./errors.ts";
import { backendChanges, backendName, checkedAlone, describeRuleChange, ruleChange, settingsChanges, type RuleChange } from "./farm-change.ts";
import { rowToInput, rowToResolved, type FarmRow } from "./farm-rows.ts";
import { bulkChange, type BulkOp, type BulkResult } from "./farm-bulk.ts";
import { loadBackendAddresses } from "./farm-list.ts";
import { createFarmSetCache } from "./farm-set-cache.ts";
import type { MutationResult } from "./result.ts";
import { deleteFarms, loadApplyLog, loadFarm, loadFarmCounts, loadFarmNames, loadFarms, loadHealthEvents, writeFarm } from "./store.ts";
import { validateSetFast } from "./validation.ts";
import { applyNames, STAGED } from "./apply-many.ts";
import { conflictMessage, farmPending, farmsText, markAllApplied, maybeStopTracking, pendingAmong, pendingLive, pendingView, readStaged, savepointSeconds, setSessionStaging, stagingMode, trackApplied, withStagingSession, writeStaged, type LiveDiff, type PendingView } from "./staging.ts";
import { markApplied } from "./apply-log.ts";
import { compareConfigs, type FarmDiff } from "./config-diff.ts";
import { getRevision, latestRevisionId, listRevisions, readAllConfig, readConfig, RevisionGone, stateAt, withAuthor, type ConfigFarm } from "./config-history.ts";
import { exportFarms, importFarms, type ImportSummary } from "./farm-io.ts";
import { FarmFileSchema, type Farm as ParsedFarm } from "../farms/schema.ts";
import { parseFarmFile } from "../farms/file.ts";
import { formatIssues } from "../farms/errors.ts";
import { ConcurrentChangeError } from "./conflict.ts";

/** The staged banner's live diff: a reading serves every page for this long. */
const LIVE_TTL_MS = 2_000;
/** A page shows a reading this old at once (while the next is made); an older one is not shown. */
const LIVE_STALE_MS = 30_000;

/**
 * The farm lifecycle behind every console mutation, `natfarm import
 * --apply`, `natfarm restore` and the health checker: validate the whole
 * resulting farm set with the shared schema, write the database in one
 * transaction, apply only the affected farm through the kernel port, and
 * record the outcome (./apply-farms.ts). No Next.js imports: vitest, the CLI
 * and the checker drive it directly.
 */
export interface ServiceDeps {
  db: PrismaClient;
  /** null: applying is disabled (target "none"); changes stay pending. */
  target: Target | null;
  /** Where privileged operations go; tests pass directKernel or a fake. */
  kernel?: KernelPort;
  /** Test hook (NATFARM_FAULT_FILE): when the file exists, its content is the table to break. */
  faultFile?: string | null;
  /** Runs before every apply, e.g. bringing the lab up. */
  prepareTarget?: () => Promise<void>;
}

/** What the farm's Settings form changes (and `natfarm` callers may change): every farm-level field. */
export type FarmSettingsPatch = Partial<Pick<FarmInput, "vip" | "ports" | "protocol" | "mode" | "status" | "scheduler" | "persistence" | "persistenceTtl">> & {
  /** null removes the health check. */
  healthcheck?: FarmInput["healthcheck"] | null;
};

type BackendInput = NonNullable<FarmInput["backends"]>[number];

/**
 * What a change is called in the apply log (its action: "drain backend
 * 203.0.113.10:80", "settings: health check enabled (tcp every 5 s)") and
 * what the operator is told once it is applied ("Backend … drained: …").
 */
export interface ChangeWords {
  action: string;
  done: string;
}
type Describe = (before: FarmInput, after: FarmInput) => ChangeWords;

/**
 * Sees the farm as stored inside the serialized write (the REST API's
 * If-Match), so the check cannot race another change; a string refuses the
 * change with that message and nothing is written.
 */
export type Precondition = (row: FarmRow) => string | null;

// Each mutation reads, validates and writes the whole farm set: one at a time in this process.
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.catch(() => {}).then(fn);
  queue = run;
  return run;
}

const noBackend = (name: string, mark: number) => `Farm ${name} has no backend with mark 0x${mark.toString(16)}.`;

export function createFarmService(deps: ServiceDeps) {
  const { db } = deps;
  const k = deps.kernel ?? kernel();
  const farmSet = createFarmSetCache(db);
  // The installation setting, or the console session the change comes from (./staging.ts).
  const staged = async () => (await stagingMode(db)).staged;
  const ctx: ApplyContext = {
    db,
    kernel: k,
    target: deps.target,
    targetLabel: deps.target ? formatTarget(deps.target) : "none",
    farmSet,
    faultFile: deps.faultFile,
    prepareTarget: deps.prepareTarget,
    staged,
  };
  // The banner's live diff: every page shows it while changes are pending, the kernel is read at most every LIVE_TTL_MS.
  type LiveEntry = { key: string; at: number; value: Promise<LiveDiff>; settled?: LiveDiff };
  let liveCache: LiveEntry | null = null;
  let liveNext: LiveEntry | null = null;
  const apply = async (name: string, action: string, cause: ApplyCause): Promise<MutationResult> => {
    if (!deps.target) return applyFarm(ctx, name, action, cause);
    const mode = await stagingMode(db);
    if (mode.staged) return stagedApply(name, action, cause);
    if (!mode.tracking) return applyFarm(ctx, name, action, cause);
    // Someone else's changes are staged: a health verdict on one of their farms waits for the apply with them.
    if (action.startsWith("health ") && (await pendingAmong(db, [name])).length) return { ok: true, farm: name, outcome: "pending", message: STAGED };
    const r = await applyFarm(ctx, name, action, cause);
    if (r.ok) await trackApplied(db, [name]);
    return r;
  };

  /**
   * An edit applied at once must not apply someone's staged changes with it:
   * while changes are tracked and this change is not staged, a farm with
   * pending changes refuses it, saying who staged what (./staging.ts).
   */
  async function stagedConflict(names: string[]): Promise<string | null> {
    if (!deps.target) return null;
    const mode = await stagingMode(db);
    if (mode.staged || !mode.tracking) return null;
    return conflictMessage(db, names);
  }

  /**
   * A change while changes are staged (./staging.ts): the database only.
   * A deleted farm's row goes now, its rules stay until Apply changes. A
   * health verdict on a farm without pending changes is applied at once
   * (the kernel must not keep sending to a dead backend); on a farm with
   * pending changes it waits for Apply changes with them. A re-apply of a
   * farm with pending changes would apply them: refused.
   */
  async function stagedApply(name: string, action: string, cause: ApplyCause): Promise<MutationResult> {
    if (cause === "remove") {
      await deleteFarms(db, [name], `farm ${name}: delete`);
      farmSet.forget();
      return { ok: true, farm: name, outcome: "removed", message: `Farm ${name} deleted from the configuration. Staged: its rules stay in the kernel until Apply changes.` };
    }
    const pending = await farmPending(db, name, (await readConfig(db, [name])).get(name) ?? null);
    if (!pending && (cause === "reapply" || action.startsWith("health "))) return applyFarm(ctx, name, action, cause);
    if (cause === "reapply") return refused(`Farm ${name} has staged changes: re-applying it would apply them. Apply changes, or Discard them, first.`);
    return { ok: true, farm: name, outcome: "pending", message: STAGED };
  }

  /**
   * The operator is told what happened, then what it did to the farm's own
   * rules (as the NAT-type preview counts them); the applier's figures,
   * which count every rule of a rewritten shard, stay in the apply log.
   */
  function told(r: MutationResult, done: string, rules: RuleChange): MutationResult {
    if (!r.ok) return r;
    if (r.outcome === "pending") return { ...r, message: r.message === STAGED ? `${done} ${STAGED}` : `${done} Applying is disabled (target none): the change is pending.` };
    const kernel = r.outcome === "unchanged" && rules.added + rules.removed > 0 ? "The kernel already held these rules." : describeRuleChange(rules);
    return { ...r, message: `${done} ${kernel}` };
  }

  /**
   * Validates `next` against every other farm, allocates marks and writes;
   * the farm written, or why not. Throws when the write met another
   * process's (writeFresh does it again).
   */
  async function save(next: FarmInput, existing: FarmRow | null, action: string): Promise<{ farm: string; rules: RuleChange } | MutationResult> {
    // A change the checks across farms cannot see (a weight, a state) skips reading and checking
    // every other farm: at 5,000 farms that is most of the service's own time in a one-farm change.
    const alone = existing ? checkedAlone(rowToInput(existing), next) : null;
    // The kernel side's question needs only the farm: asked now, answered while the set is checked.
    const asked = alone ? askKernelFirst(alone) : null;
    let farm: ResolvedFarm;
    if (alone) farm = alone;
    else {
      const rows = await farmSet.rows();
      const others = rows.filter((r) => r.id !== existing?.id).map(farmSet.input);
      const checked = validateSetFast(others, next);
      if (!checked.ok) return invalid(checked.errors, checked.message);
      // Existing backends carry their marks; new ones get the lowest free marks.
      const resolved = resolveMarks(checked.farms);
      farm = resolved[resolved.length - 1]!;
    }
    const refusal = await (asked ?? askKernelFirst(farm));
    if (refusal) return refusal;
    await writeFarm(db, farm, existing?.id ?? null, `farm ${farm.name}: ${action}`);
    return { farm: farm.name, rules: ruleChange(existing ? rowToResolved(existing) : null, farm, k.engine) };
  }

  /**
   * Asked before the write, so that what the kernel side will refuse is
   * refused with nothing saved:
   *   - a VIP on one of the target's own (unlabelled) addresses: a field
   *     error on "vip", not a farm saved as "failed";
   *   - no agent to apply with: the operator expects a change the console
   *     cannot even try to apply not to be half-made (saved but not in the
   *     kernel, applied later by someone else's unrelated change), so it is
   *     refused as a whole and the form keeps what was typed.
   * A target that cannot be read yet (the lab still coming up) is left to
   * the apply to report.
   */
  async function askKernelFirst(farm: Farm): Promise<MutationResult | null> {
    if (!deps.target) return null;
    try {
      await k.checkLocalVips(deps.target, [farm]);
      return null;
    } catch (e) {
      const f = kernelFailure(e);
      if (f.kind === "unreachable") return unavailable();
      if (f.kind === "invalid") return invalid(localVipErrors(f.error));
      return null;
    }
  }

  /**
   * Reads, validates and writes; another process (a second console, `natfarm
   * import`, the checker) may have written in between, and the database's
   * constraints refuse the write (a name or a mark taken meanwhile, a row
   * gone). Then it is all done again from a fresh read, which reports a farm
   * created meanwhile as the set check does ("a farm named X already
   * exists") and gives a mark taken meanwhile another one. The apply runs
   * once, after the write that went through.
   */
  type Written = { farm: string; rules: RuleChange; words?: ChangeWords };
  async function writeFresh(action: string, write: () => Promise<Written | MutationResult>): Promise<MutationResult> {
    const written = await retryOnConflict(write, writeConflict, () => farmSet.forget());
    if ("ok" in written) return written;
    const r = await apply(written.farm, written.words?.action ?? action, "written");
    return told(r, written.words?.done ?? `Farm ${written.farm} saved.`, written.rules);
  }

  /** `describe` names the change from the farm as it was read inside the serialized write and as it will be. */
  async function mutate(name: string, describe: Describe, change: (current: FarmInput) => FarmInput | string, precondition?: Precondition, opts: { health?: boolean } = {}): Promise<MutationResult> {
    return serialized(() =>
      writeFresh("update", async () => {
        const row = await loadFarm(db, name);
        if (!row) return notFound(name);
        const no = precondition?.(row) ?? (opts.health ? null : await stagedConflict([row.name]));
        if (no) return refused(no);
        const current = rowToInput(row);
        const next = change(current);
        if (typeof next === "string") return refused(next);
        const words = describe(current, next);
        const saved = await save({ ...next, name: row.name }, row, words.action);
        return "ok" in saved ? saved : { ...saved, words };
      }),
    );
  }

  /** Established and opening connections of a mark, before a cut; null when conntrack cannot be read. */
  async function openConnections(target: Target, mark: number): Promise<number | null> {
    try {
      const s = (await k.connectionStats(target)).byMark.get(mark);
      return s ? s.established + s.pending : 0;
    } catch {
      return null;
    }
  }

  const backendOf = (f: FarmInput, mark: number) => (f.backends ?? []).find((b) => b.mark === mark);
  const backendWords = (f: FarmInput, mark: number) => {
    const b = backendOf(f, mark);
    return b ? backendName(b) : `with mark 0x${mark.toString(16)}`;
  };
  const where = (f: FarmInput) => `${f.vip}:${f.ports}`;

  /** The change to the kernel alone, for a farm that exists. */
  function applyExisting(name: string, action: string, cause: "reapply" | "remove", precondition?: Precondition): Promise<MutationResult> {
    return serialized(async () => {
      const row = await loadFarm(db, name);
      if (!row) return notFound(name);
      const no = precondition?.(row) ?? (await stagedConflict([row.name]));
      if (no) return refused(no);
      return apply(name, action, cause);
    });
  }

  const revisionMissing = (e: unknown): MutationResult | null => (e instanceof RevisionGone ? { ok: false, reason: "not-found", message: e.message } : null);

  /** A configuration as the shared file schema reads it; the sentences naming farm, backend and field when it does not parse. */
  function parseConfig(farms: unknown): { farms: ParsedFarm[] } | MutationResult {
    const parsed = FarmFileSchema.safeParse({ farms });
    if (!parsed.success) return refusedWith(formatIssues(parsed.error, { farms }));
    return { farms: parsed.data.farms };
  }

  function refusedWith(issues: string[]): MutationResult {
    const message = `Nothing changed: ${issues.slice(0, 20).join("; ")}${issues.length > 20 ? ` (and ${issues.length - 20} more)` : ""}`;
    return { ok: false, reason: "invalid", message, errors: { _form: issues.length ? issues : [message] } };
  }

  /**
   * The whole desired state becomes `farms` (a revision's, a backup's): one
   * transaction with its revision, then one scoped kernel apply of the farms
   * that differ. A backend the checker has down now stays down.
   */
  function replaceConfig(farms: ParsedFarm[], summary: string, done: string): Promise<MutationResult> {
    return serialized(async () => {
      // Applied at once, the whole configuration would take someone's staged changes with it.
      const mode = deps.target ? await stagingMode(db) : null;
      const atOnce = !!mode && mode.tracking && !mode.staged;
      if (atOnce) {
        const pending = (await pendingView(db, k.engine, null)).farms;
        const conflict = pending.length ? await conflictMessage(db, pending) : null;
        if (conflict) return refused(conflict);
      }
      const r = await replaceConfigNow(farms, summary, done);
      if (atOnce && r.ok && r.outcome !== "pending" && r.changed?.length) await trackApplied(db, r.changed);
      return r;
    });
  }

  /** replaceConfig's work, inside the serialized queue. `kernel: false`: the database only (Discard). */
  async function replaceConfigNow(farms: ParsedFarm[], summary: string, done: string, opts: { kernel?: boolean; evenStaged?: boolean } = {}): Promise<MutationResult & { changed?: string[] }> {
    {
      if (deps.target) {
        try {
          await k.checkLocalVips(deps.target, farms as Farm[]);
        } catch (e) {
          const f = kernelFailure(e);
          if (f.kind === "unreachable") return unavailable();
          if (f.kind === "invalid") return refusedWith(f.issues);
        }
      }
      let s: ImportSummary;
      try {
        s = await importFarms(db, farms, { replace: true, summary, keepHealthDown: true, quiet: true });
      } catch (e) {
        const f = kernelFailure(e);
        if (f.kind === "invalid") return refusedWith(f.issues);
        if (e instanceof ConcurrentChangeError) return refused(e.message);
        throw e;
      } finally {
        farmSet.forget();
      }
      const changed = [...s.created, ...s.updated, ...s.removed];
      if (changed.length === 0) return { ok: true, farm: "*", outcome: "unchanged", message: `${done.replace(/:$/, ".")} It was the current configuration already: nothing changed.` };
      const n = (k: string, xs: string[]) => (xs.length ? `${xs.length} farm${xs.length === 1 ? "" : "s"} ${k}` : "");
      const counts = [n("created", s.created), n("changed", s.updated), n("deleted", s.removed)].filter(Boolean).join(", ");
      if (opts.kernel === false) return { ok: true, farm: "*", outcome: "unchanged", message: `${done} ${counts}.`, changed };
      return { ...(await applyNames(ctx, changed, summary, `${done} ${counts}.`, { evenStaged: opts.evenStaged })), changed };
    }
  }

  return {
    kernel: k,
    target: deps.target,

    /** The configuration history, newest first (./config-history.ts). */
    revisions: (opts: { limit?: number; before?: number } = {}) => listRevisions(db, opts),
    revision: (id: number) => getRevision(db, id),
    /** The whole desired state at a revision (RevisionGone when not kept). */
    configAt: (id: number) => stateAt(db, id),
    /** The desired state now, as configuration (health-down backends read as in service). */
    currentConfig: async (): Promise<ConfigFarm[]> => [...(await readAllConfig(db)).values()],
    /** Farm and rule diffs from revision `from` (null: now) to revision `to` (null: now). */
    async compare(from: number | null, to: number | null): Promise<{ ok: true; diffs: FarmDiff[] } | MutationResult> {
      try {
        const [a, b] = await Promise.all([from === null ? this.currentConfig() : stateAt(db, from), to === null ? this.currentConfig() : stateAt(db, to)]);
        return { ok: true, diffs: compareConfigs(a, b, k.engine) };
      } catch (e) {
        const r = revisionMissing(e);
        if (r) return r;
        throw e;
      }
    },

    /** Back to revision `id`, as a new revision applied like any change. */
    async revert(id: number): Promise<MutationResult> {
      let farms: ConfigFarm[];
      try {
        farms = await stateAt(db, id);
      } catch (e) {
        const r = revisionMissing(e);
        if (r) return r;
        throw e;
      }
      const parsed = parseConfig(farms);
      if ("ok" in parsed) return parsed;
      return replaceConfig(parsed.farms, `revert to revision ${id}`, `Reverted to revision ${id}:`);
    },

    /**
     * A backup file (the farm file, as `natfarm export` and backup() write
     * it) becomes the whole desired state; a file the shared schema refuses
     * changes nothing and says why.
     */
    async restore(text: string, name = "the backup"): Promise<MutationResult> {
      let farms: ParsedFarm[];
      try {
        farms = parseFarmFile(text, name).farms;
      } catch (e) {
        const f = kernelFailure(e);
        if (f.kind === "invalid") return refusedWith(f.issues);
        throw e;
      }
      return replaceConfig(farms, `restore ${name}`, `Restored ${name}:`);
    },

    /** The whole configuration as the farm file (`natfarm export`'s format, marks included). */
    backup: () => exportFarms(db),

    // ------------------------------------------------------------ staged changes (./staging.ts)

    /**
     * Whether changes are staged, what is pending (revisions, farm and rule
     * diffs) and any savepoint. `live`: also what Apply changes does to the
     * kernel as it is now, per pending farm (./staging.ts pendingLive),
     * shared by the pages asking within LIVE_TTL_MS.
     */
    async staging(opts: { live?: boolean; session?: string; waitMs?: number } = {}): Promise<PendingView> {
      const view = opts.session ? await withStagingSession(opts.session, () => pendingView(db, k.engine)) : await pendingView(db, k.engine);
      if (!opts.live || !deps.target || view.farms.length === 0 || view.savepoint) return view;
      const target = deps.target;
      const key = JSON.stringify([view.farms, view.revisions[0]?.id ?? null]);
      const read = () => {
        const entry: LiveEntry = { key, at: Date.now(), value: pendingLive({ db, kernel: k, target }, view) };
        entry.value.then(
          (v) => {
            entry.settled = v;
            // A failed read is not kept: the next page asks again.
            if (v.error && liveCache === entry) liveCache = null;
          },
          () => liveCache === entry && (liveCache = null),
        );
        return entry;
      };
      // Stale while revalidating: a page shows the last reading of these farms at once and the next one reads again.
      const wait = opts.waitMs ?? Infinity;
      let hit = liveCache?.key === key ? liveCache : null;
      const age = hit ? Date.now() - hit.at : Infinity;
      if (hit?.settled && age <= LIVE_TTL_MS) return { ...view, live: hit.settled };
      // A caller that waits (the API, the CLI) gets a reading made now; a page a recent one at once.
      if (hit?.settled && (wait === Infinity || age > LIVE_STALE_MS)) hit = liveCache = null;
      if (hit?.settled) {
        if (!liveNext || liveNext.key !== key) {
          const next = read();
          liveNext = next;
          next.value.then(() => {
            if (liveNext === next) liveNext = null;
            if (next.settled && !next.settled.error) liveCache = next;
          }, () => liveNext === next && (liveNext = null));
        }
        return { ...view, live: hit.settled };
      }
      if (!hit) liveCache = read();
      const entry = liveCache!;
      if (wait === Infinity) return { ...view, live: await entry.value };
      // The page does not wait long for the kernel: without a reading yet it shows the rendered diff, and asks again in a moment.
      const done = await Promise.race([entry.value, new Promise<null>((r) => setTimeout(() => r(null), wait))]);
      return done ? { ...view, live: done } : { ...view, liveReading: true };
    },

    /** The farms or the kernel just changed: the next live staged diff reads the kernel again. */
    forgetStagedLive(): void {
      liveCache = null;
      liveNext = null;
    },

    /** The installation setting. Turned on: the kernel is taken to hold the desired state as it is. Off: only with nothing pending. */
    setStaging(enabled: boolean): Promise<MutationResult> {
      return serialized(async () => {
        const view = await pendingView(db, k.engine);
        if (enabled === view.enabled) return { ok: true, farm: "*", outcome: "unchanged", message: `Staged changes are ${enabled ? "on" : "off"} already.` };
        if (enabled) {
          // Staging sessions may have changes pending already: those stay pending.
          if (view.tracking) await writeStaged(db, { enabled: true });
          else await markAllApplied(db, { enabled: true });
          return { ok: true, farm: "*", outcome: "unchanged", message: "Staged changes are on: edits change the configuration only, until Apply changes commits them all in one transaction." };
        }
        if (view.diffs.length) return refused(`${view.diffs.length} farm${view.diffs.length === 1 ? " has" : "s have"} staged changes: Apply changes or Discard them before turning staging off.`);
        if (view.savepoint) return refused("An apply is waiting for its confirmation: confirm it (or let it roll back) before turning staging off.");
        await writeStaged(db, { enabled: false });
        await maybeStopTracking(db, k.engine);
        return { ok: true, farm: "*", outcome: "unchanged", message: "Staged changes are off: every edit is applied at once again (except a login's that stages its own)." };
      });
    },

    /** One console session's own staging (./staging.ts): its edits staged while the installation setting is off. */
    setSessionStaging(sessionId: string, on: boolean): Promise<MutationResult> {
      return serialized(async () => {
        const r = await setSessionStaging(db, sessionId, on, k.engine);
        return r.ok ? { ok: true, farm: "*", outcome: "unchanged", message: r.message } : refused(r.message);
      });
    },

    /**
     * Every pending change into the kernel in ONE transaction. With
     * `savepoint`, unless confirmSavepoint() comes within
     * NATFARM_SAVEPOINT_SECONDS, checkSavepoint() (the health checker's
     * loop) brings the previous configuration back by itself.
     */
    applyStaged(opts: { savepoint?: boolean } = {}): Promise<MutationResult> {
      return serialized(async () => {
        const s = await readStaged(db);
        const view = await pendingView(db, k.engine);
        if (!view.tracking) return refused("Changes are not staged: every edit is applied at once.");
        if (s.savepointUntil) return refused("An apply is waiting for its confirmation: confirm it, or let it roll back, before applying again.");
        if (view.farms.length === 0) return { ok: true, farm: "*", outcome: "unchanged", message: "Nothing is pending: the kernel holds the configuration." };
        const n = view.revisions.length;
        const done = `Applied ${n} pending change${n === 1 ? "" : "s"} (${view.farms.length === 1 ? `farm ${view.farms[0]}` : `${view.farms.length} farms`}) in one transaction.`;
        const r = await applyNames(ctx, view.farms, opts.savepoint ? "apply changes (savepoint)" : "apply changes", done, { evenStaged: true });
        if (!r.ok) return r;
        if (!opts.savepoint) {
          await markAllApplied(db, { savepointOutcome: null });
          await maybeStopTracking(db, k.engine);
          return r;
        }
        const secs = savepointSeconds();
        const until = new Date(Date.now() + secs * 1000);
        await markAllApplied(db, { savepointUntil: until, savepointConfig: farmsText(s.applied ?? []), savepointRevision: await latestRevisionId(db), savepointOutcome: null });
        return { ...r, message: `${r.message} Confirm within ${secs} s, or natfarm goes back to the previous configuration by itself.` };
      });
    },

    /** Back to what the kernel holds: the desired state only (a new revision); the kernel is not touched. */
    discardStaged(): Promise<MutationResult> {
      return serialized(async () => {
        const s = await readStaged(db);
        if (!s.applied) return refused("Changes are not staged: there is nothing to discard.");
        const parsed = parseConfig(s.applied ?? []);
        if ("ok" in parsed) return parsed;
        const r = await replaceConfigNow(parsed.farms, "discard staged changes", "Staged changes discarded:", { kernel: false });
        if (!r.ok) return r;
        // The rows are what the kernel holds again.
        if (r.changed?.length) await markApplied(db, { names: r.changed });
        await writeStaged(db, { appliedRevision: await latestRevisionId(db) });
        await maybeStopTracking(db, k.engine);
        return { ok: true, farm: "*", outcome: "unchanged", message: r.changed?.length ? `${r.message.replace(/\.$/, "")} back to what the kernel holds; the kernel was not touched.` : "Nothing was pending: nothing discarded." };
      });
    },

    /** Keeps the apply under savepoint. Too late (rolled back already): refused. */
    async confirmSavepoint(by: string): Promise<MutationResult> {
      const n = await db.stagedState.updateMany({ where: { id: 1, savepointUntil: { gt: new Date() } }, data: { savepointUntil: null, savepointConfig: null, savepointOutcome: `confirmed by ${by.slice(0, 80)}` } });
      if (n.count === 0) return refused("No apply is waiting for its confirmation: it was confirmed already, or its time ran out and it was rolled back.");
      return { ok: true, farm: "*", outcome: "unchanged", message: "Changes kept: the savepoint is confirmed." };
    },

    /**
     * The savepoint's deadline passed without a confirmation: the previous
     * configuration comes back (a new revision) and is applied in one
     * transaction. Run every second by the health checker; whoever clears
     * the deadline first (one conditional UPDATE) does it, once. null: nothing due.
     */
    async checkSavepoint(now = new Date()): Promise<MutationResult | null> {
      const s = await readStaged(db);
      if (!s.savepointUntil || s.savepointUntil > now) return null;
      const claimed = await db.stagedState.updateMany({ where: { id: 1, savepointUntil: s.savepointUntil }, data: { savepointUntil: null, savepointOutcome: "rolling back" } });
      if (claimed.count === 0) return null;
      const parsed = parseConfig(s.savepointConfig ?? []);
      if ("ok" in parsed) return parsed;
      const summary = `savepoint: not confirmed in time, back to the configuration before revision ${s.savepointRevision ?? "?"}`;
      const r = await withAuthor({ name: "system (savepoint)", via: "system" }, () =>
        serialized(() => replaceConfigNow(parsed.farms, summary, "Not confirmed in time: the previous configuration is back:", { evenStaged: true })),
      );
      if (r.ok) await markAllApplied(db, { savepointConfig: null, savepointRevision: null, savepointOutcome: `rolled back at ${now.toISOString()}: not confirmed in time` });
      // The kernel kept the savepoint's rules (an apply is all or nothing): what it holds is unchanged, the desired state is the old one, pending.
      else await writeStaged(db, { savepointConfig: null, savepointRevision: null, savepointOutcome: `rolling back failed: ${r.message}` });
      return r;
    },

    listFarms: () => loadFarms(db),
    listFarmCounts: () => loadFarmCounts(db),
    /** Each farm's backend addresses ("ip:port ip:port"), by name: the farms list's search and bulk drain. */
    listBackendAddresses: () => loadBackendAddresses(db),
    /** Names only, in order: cheap at 5,000 farms. */
    listFarmNames: () => loadFarmNames(db),
    getFarm: (name: string) => loadFarm(db, name),

    createFarm(input: FarmInput): Promise<MutationResult> {
      // A name already taken is caught by the set check, reported on "name" (also when another process took it meanwhile).
      const n = input.backends?.length ?? 0;
      const words = { action: "create", done: `Farm ${input.name} created: ${String(input.vip).trim()}:${String(input.ports).trim()} balanced over ${n} backend${n === 1 ? "" : "s"}.` };
      return serialized(() => writeFresh("create", async () => {
        // A staged deletion of a farm of this name is pending.
        const conflict = typeof input.name === "string" ? await stagedConflict([input.name]) : null;
        if (conflict) return refused(conflict);
        const saved = await save(input, null, "create");
        return "ok" in saved ? saved : { ...saved, words };
      }));
    },

    /**
     * `healthcheck: null` removes the health check; a field left out keeps
     * its value. The whole resulting farm is validated: bad input comes back
     * as field errors (`vip`, `healthcheck.timeout`) and nothing is written.
     */
    updateFarm(name: string, patch: FarmSettingsPatch, action = "update") {
      const describe: Describe = (before, after) => {
        const changes = settingsChanges(before, after);
        const what = changes.length ? changes.join(", ") : "nothing changed";
        return { action: `${action}: ${what}`, done: changes.length ? `Farm ${name}: ${what}.` : `Farm ${name}: the settings were saved unchanged.` };
      };
      return mutate(name, describe, (f) => {
        const { healthcheck, ...rest } = patch;
        const next: FarmInput = { ...f, ...rest };
        if (healthcheck === null) delete next.healthcheck;
        else if (healthcheck !== undefined) next.healthcheck = healthcheck;
        return next;
      });
    },

    /**
     * The whole farm replaced by `build(current)` (the REST API's PUT and
     * PATCH): `build` sees the stored farm inside the serialized write, so a
     * version check (If-Match) made there cannot race another change; a
     * string it returns refuses the change with that message (nothing
     * written). The name stays the farm's.
     */
    replaceFarm(name: string, build: (current: FarmRow) => FarmInput | string, action = "replace") {
      return serialized(() =>
        writeFresh(action, async () => {
          const row = await loadFarm(db, name);
          if (!row) return notFound(name);
          const conflict = await stagedConflict([row.name]);
          if (conflict) return refused(conflict);
          const next = build(row);
          if (typeof next === "string") return refused(next);
          const changes = settingsChanges(rowToInput(row), next);
          const words = { action: changes.length ? `${action}: ${changes.join(", ")}` : action, done: `Farm ${name} replaced${changes.length ? `: ${changes.join(", ")}` : ""}.` };
          const saved = await save({ ...next, name: row.name }, row, words.action);
          return "ok" in saved ? saved : { ...saved, words };
        }),
      );
    },

    setMode(name: string, mode: "nat" | "dnat", precondition?: Precondition) {
      const done =
        mode === "nat"
          ? `Farm ${name} switched to NAT: the source is rewritten to the VIP, so backends see the VIP.`
          : `Farm ${name} switched to DNAT: backends see the client's address and must route replies through the load balancer.`;
      return mutate(name, () => ({ action: `mode ${mode}`, done }), (f) => ({ ...f, mode }), precondition);
    },

    setStatus(name: string, status: "up" | "stopped", precondition?: Precondition) {
      const describe: Describe = (f) =>
        status === "up"
          ? { action: "start", done: `Farm ${name} started: new connections to ${where(f)} are balanced again.` }
          : { action: "stop", done: `Farm ${name} stopped: its rules left the kernel, new connections to ${where(f)} are no longer balanced (open ones keep their translation until they end).` };
      return mutate(name, describe, (f) => ({ ...f, status }), precondition);
    },

    addBackend(name: string, backend: BackendInput, precondition?: Precondition) {
      // A mark is never taken from the form: natfarm allocates it.
      const { mark: _ignored, ...rest } = backend;
      const who = backendName({ ip: String(rest.ip ?? "").trim(), port: typeof rest.port === "number" ? rest.port : null });
      return mutate(name, () => ({ action: `add backend ${who}`, done: `Backend ${who} added to farm ${name}.` }), (f) => ({ ...f, backends: [...(f.backends ?? []), rest] }), precondition);
    },

    updateBackend(name: string, mark: number, patch: Partial<Omit<BackendInput, "mark">>, precondition?: Precondition) {
      const describe: Describe = (before) => {
        const b = backendOf(before, mark);
        const who = backendWords(before, mark);
        const changes = b ? backendChanges(b as Record<string, unknown>, patch as Record<string, unknown>) : [];
        const what = changes.length ? changes.join(", ") : "nothing changed";
        return { action: `edit backend ${who}: ${what}`, done: `Backend ${who} of farm ${name}: ${what}.` };
      };
      return mutate(name, describe, (f) => {
        const backends = f.backends ?? [];
        const i = backends.findIndex((b) => b.mark === mark);
        if (i === -1) return noBackend(name, mark);
        return { ...f, backends: backends.map((b, j) => (j === i ? { ...b, ...patch, mark } : b)) };
      }, precondition);
    },

    /** What the health checker decides. A backend an operator put in maintenance stays there. */
    setBackendHealth(name: string, mark: number, health: "up" | "down") {
      const describe: Describe = (f) => ({ action: `health ${health} backend ${backendWords(f, mark)}`, done: `Backend ${backendWords(f, mark)} of farm ${name} is ${health === "up" ? "back up" : "down"} (health check).` });
      return mutate(name, describe, (f) => {
        const backends = f.backends ?? [];
        const b = backends.find((x) => x.mark === mark);
        if (!b) return noBackend(name, mark);
        if (b.state === "maintenance") return f;
        return { ...f, backends: backends.map((x) => (x.mark === mark ? { ...x, state: health } : x)) };
      }, undefined, { health: true });
    },

    /**
     * "drain" stops new connections to the backend and lets the open ones
     * finish; "cut" also ends the open ones (their conntrack entries go);
     * "off" puts the backend back into service.
     */
    async setMaintenance(name: string, mark: number, mode: "drain" | "cut" | "off", precondition?: Precondition): Promise<MutationResult> {
      let who = "";
      const describe: Describe = (f) => {
        who = backendWords(f, mark);
        const verb = mode === "off" ? "back in service" : mode === "cut" ? "cut" : "drain";
        const done =
          mode === "off"
            ? `Backend ${who} of farm ${name} is back in service: it takes new connections again.`
            : mode === "drain"
              ? `Backend ${who} of farm ${name} is draining: no new connections, open ones continue.`
              : `Backend ${who} of farm ${name} is in maintenance: no new connections.`;
        return { action: mode === "off" ? `${verb}: backend ${who}` : `${verb} backend ${who}`, done };
      };
      const r = await mutate(name, describe, (f) => {
        const backends = f.backends ?? [];
        if (!backends.some((b) => b.mark === mark)) return noBackend(name, mark);
        return { ...f, backends: backends.map((b) => (b.mark === mark ? { ...b, state: mode === "off" ? "up" : "maintenance" } : b)) };
      }, precondition);
      if (!r.ok || mode !== "cut" || !deps.target) return r;
      try {
        // What "cut" ends is what is open now (no new ones arrive any more): conntrack -D also deletes
        // closing entries (TIME_WAIT), which are no connection an operator would count.
        const open = await openConnections(deps.target, mark);
        const deleted = await k.cutConnections(deps.target, mark);
        const n = open === null ? deleted : Math.min(open, deleted);
        const cut = n === 0 ? "It held no open connection." : `${n} open connection${n === 1 ? "" : "s"} cut.`;
        return { ...r, message: r.message.replace(/ no new connections\./, ` no new connections. ${cut}`) };
      } catch (e) {
        const f = kernelFailure(e);
        const message = f.kind === "unreachable" ? "the natfarm agent is not running" : f.message;
        return { ok: false, reason: "apply-failed", farm: name, message: `The backend is in maintenance, but cutting its connections failed: ${message}`, iptables: message };
      }
    },

    removeBackend(name: string, mark: number, precondition?: Precondition) {
      const describe: Describe = (before, after) => {
        const who = backendWords(before, mark);
        const left = after.backends ?? [];
        const up = left.filter((b) => (b.state ?? "up") === "up").length;
        const consequence =
          left.length === 0
            ? ` The farm has no backend left: new connections to ${where(before)} are not balanced until one is added.`
            : up === 0
              ? ` No backend left is up: new connections to ${where(before)} are not balanced.`
              : "";
        return { action: `remove backend ${who}`, done: `Backend ${who} removed from farm ${name}.${consequence}` };
      };
      return mutate(name, describe, (f) => {
        const backends = f.backends ?? [];
        if (!backends.some((b) => b.mark === mark)) return noBackend(name, mark);
        return { ...f, backends: backends.filter((b) => b.mark !== mark) };
      }, precondition);
    },

    /** Puts the database's rules for the farm back into the kernel (after drift or a failed apply). */
    async reapply(name: string, precondition?: Precondition): Promise<MutationResult> {
      const r = await applyExisting(name, "reapply", "reapply", precondition);
      if (!r.ok) return r;
      return { ...r, message: r.outcome === "unchanged" ? `Farm ${name} re-applied: the kernel already held its rules.` : `Farm ${name} re-applied: the kernel holds its rules again.` };
    },

    /** `precondition` (the REST API's If-Match) sees the farm as stored inside the serialized removal; a string refuses it. */
    deleteFarm(name: string, precondition?: Precondition): Promise<MutationResult> {
      return applyExisting(name, "remove", "remove", precondition);
    },

    /** natfarm's rules in the kernel become exactly the database's farms (after an import; `natfarm restore`). */
    async applyAll(action = "apply all"): Promise<MutationResult> {
      const r = await serialized(async () => {
        const out = await applyAllFarms(ctx, action);
        // Staged changes are in the kernel now too (as at boot: `restore` applies the configuration as saved).
        if (out.ok && (await stagingMode(db)).tracking) {
          await markAllApplied(db);
          await maybeStopTracking(db, k.engine);
        }
        return out;
      });
      if (!r.ok) return r;
      const counts = r.message.replace(/^Applied /, "").replace(/\.$/, "");
      return { ...r, message: `${r.outcome === "unchanged" ? "The kernel already held exactly the database's farms" : "The kernel now holds exactly the database's farms"} (${counts}).` };
    },

    /**
     * Start, stop, delete or drain a backend address in many farms at once
     * (the farms list's bulk actions): one database transaction, one scoped
     * apply for all of them, nothing changed when any chosen farm is refused.
     */
    bulk(names: string[], op: BulkOp): Promise<BulkResult> {
      return serialized(async () => {
        const conflict = await stagedConflict(names);
        if (conflict) return { result: refused(conflict), farms: [] };
        const r = await bulkChange(ctx, names, op);
        if (r.result.ok && r.result.outcome !== "pending" && (await stagingMode(db)).tracking) await trackApplied(db, r.farms);
        return r;
      });
    },

    history(limit = 500) {
      return loadApplyLog(db, limit);
    },

    /** The health checker's state changes, newest first (one farm's, or every farm's). */
    healthEvents(opts: { farm?: string; limit?: number } = {}) {
      return loadHealthEvents(db, opts);
    },
  };
}

export type FarmService = ReturnType<typeof createFarmService>;
