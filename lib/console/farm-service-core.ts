import { existsSync, readFileSync } from "node:fs";
import type { z } from "zod";
import { applyFarms, ApplyError, cutConnections, FarmValidationError, validateFarms } from "../applier/index.ts";
import { checkLocalVips } from "../applier/local-vips.ts";
import { formatIssues } from "../farms/errors.ts";
import { resolveMarks } from "../farms/resolve.ts";
import { FarmListSchema, type Farm, type FarmInput } from "../farms/schema.ts";
import { farmWarnings } from "../farms/warnings.ts";
import { shardOf } from "../netfilter/layout.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import { retryOnConflict } from "./conflict.ts";
import { rowToInput, type FarmRow } from "./farm-model.ts";

/**
 * The farm lifecycle behind every console mutation (and `natfarm import`):
 * validate the whole resulting farm set with the shared schema, write the
 * database in one transaction, apply only the affected farm, and record the
 * outcome on the farm and in the apply log. The database holds the desired
 * state; `applyState` says whether the kernel holds it too, so the two never
 * disagree without the console saying so: a farm is "applied" only after an
 * apply wrote (or found) its rows' rules, every farm an apply changed is
 * named in its log entry, and a farm nobody applied stays "pending" (a
 * scoped apply writes only the farm it names: the applier leaves the other
 * farms of its shard as the kernel holds them).
 *
 * No Next.js imports: vitest drives this module directly.
 */
export interface ServiceDeps {
  db: PrismaClient;
  /** null: applying is disabled (target "none"); changes stay pending. */
  target: Target | null;
  /** Test hook (NATFARM_FAULT_FILE): when the file exists, its content is the table to break. */
  faultFile?: string | null;
  /** Runs before every apply, e.g. bringing the lab up. */
  prepareTarget?: () => Promise<void>;
}

export type FieldErrors = Record<string, string[]>;

/** What the farm's Settings form changes (and `natfarm` callers may change): every farm-level field. */
export type FarmSettingsPatch = Partial<Pick<FarmInput, "vip" | "ports" | "protocol" | "mode" | "status" | "scheduler" | "persistence" | "persistenceTtl">> & {
  /** null removes the health check. */
  healthcheck?: FarmInput["healthcheck"] | null;
};

export type MutationResult =
  | {
      ok: true;
      farm: string;
      outcome: "applied" | "unchanged" | "pending" | "removed";
      message: string;
      /** Accepted, but worth the operator's attention (farmWarnings, the applier's warnings). */
      warnings?: string[];
      errors?: undefined;
    }
  | { ok: false; reason: "invalid"; message: string; errors: FieldErrors }
  | { ok: false; reason: "not-found"; message: string; errors?: undefined }
  | { ok: false; reason: "apply-failed"; farm: string; message: string; iptables: string; errors?: undefined };

const INCLUDE = { backends: { orderBy: { position: "asc" } } } as const;

/** In-process serialisation: each mutation reads, validates and writes the whole farm set. */
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.catch(() => {}).then(fn);
  queue = run;
  return run;
}

/**
 * Every farm with its backends. Two plain queries joined here: an `include`
 * would bind one parameter per farm, past SQLite's limit at a few thousand farms.
 */
export async function loadFarms(db: PrismaClient): Promise<FarmRow[]> {
  const [farms, backends] = await Promise.all([
    db.farm.findMany({ orderBy: { name: "asc" } }),
    db.backend.findMany({ orderBy: [{ farmId: "asc" }, { position: "asc" }] }),
  ]);
  const byFarm = new Map<number, FarmRow["backends"]>();
  for (const b of backends) {
    let list = byFarm.get(b.farmId);
    if (!list) byFarm.set(b.farmId, (list = []));
    list.push(b);
  }
  return farms.map((f) => ({ ...f, backends: byFarm.get(f.id) ?? [] }));
}

/** One line per farm with backend counts, in one query: what the farms table needs, fast at 5,000 farms. */
export interface FarmCountsRow {
  name: string;
  vip: string;
  ports: string;
  protocol: string;
  mode: string;
  status: string;
  applyState: string;
  applyError: string | null;
  backends: number;
  backendsUp: number;
}

export async function loadFarmCounts(db: PrismaClient): Promise<FarmCountsRow[]> {
  const rows = await db.$queryRaw<FarmCountsRow[]>`
    SELECT f.name, f.vip, f.ports, f.protocol, f.mode, f.status, f.applyState, f.applyError,
           COUNT(b.id) AS backends, COALESCE(SUM(b.state = 'up'), 0) AS backendsUp
    FROM "Farm" f LEFT JOIN "Backend" b ON b.farmId = f.id
    GROUP BY f.id ORDER BY f.name`;
  // SQLite aggregates may come back as bigint.
  return rows.map((r) => ({ ...r, backends: Number(r.backends), backendsUp: Number(r.backendsUp) }));
}

export async function loadFarm(db: PrismaClient, name: string): Promise<FarmRow | null> {
  return (await db.farm.findUnique({ where: { name }, include: INCLUDE })) as FarmRow | null;
}

/**
 * Validates the farm set in which `focus` is the farm being changed. The
 * focus farm goes last, so that cross-farm conflicts (duplicate name, VIP:port
 * overlap, duplicate mark) are reported on it, under its own field names.
 */
export function validateSet(
  others: FarmInput[],
  focus: FarmInput,
): { ok: true; farms: Farm[] } | { ok: false; errors: FieldErrors; message: string } {
  const list = [...others, focus];
  const parsed = FarmListSchema.safeParse(list);
  if (parsed.success) return { ok: true, farms: parsed.data };
  return { ok: false, errors: focusErrors(parsed.error, list, others.length), message: "The farm was not saved: fix the highlighted fields." };
}

function focusErrors(error: z.ZodError, input: unknown, index: number): FieldErrors {
  const out: FieldErrors = {};
  const described = formatIssues(error, input);
  error.issues.forEach((issue, i) => {
    const key = issue.path[0] === index && issue.path.length > 1 ? issue.path.slice(1).map(String).join(".") : "_form";
    (out[key] ??= []).push(key === "_form" ? described[i]! : operatorWords(issue.message));
  });
  return out;
}

/** The set check names the other farm by its index in the list; the operator knows it by name. */
function operatorWords(message: string): string {
  const dup = /^farm name "(.+)" is already used by farm \d+$/.exec(message);
  return dup ? `a farm named "${dup[1]}" already exists` : message;
}

/**
 * validateSet for a one-farm change in a large set, through the applier's own
 * validation: unchanged farms (the set cache keeps their objects) are not
 * parsed again, only the focus farm and the checks across farms run. Any
 * problem goes to validateSet, whose report is the reference (same messages,
 * same keys).
 */
export function validateSetFast(others: FarmInput[], focus: FarmInput): ReturnType<typeof validateSet> {
  try {
    return { ok: true, farms: validateFarms([...others, focus]) };
  } catch (e) {
    if (e instanceof FarmValidationError) return validateSet(others, focus);
    throw e;
  }
}

/**
 * The farm set as the database holds it, kept in memory between mutations:
 * at 5,000 farms reading every row costs a quarter of a second, more than a
 * whole one-farm change may take. Each use re-reads only the farms written
 * since the last one (by anyone: the health checker and the CLI write the same
 * database), found by their update time with a margin for writes still
 * committing; counts that do not add up mean a full reload. Unchanged farms
 * keep their input objects, so the validation above and the applier's own
 * skip them.
 */
const RECENT_MARGIN_MS = 2_000;

export function createFarmSetCache(db: PrismaClient) {
  let byId = new Map<number, FarmRow>();
  const inputs = new WeakMap<FarmRow, FarmInput>();
  let since: { farms: Date | null; backends: Date | null } | null = null;
  let sorted: FarmRow[] | null = null;

  const aggregates = () =>
    db.$transaction([
      db.farm.aggregate({ _count: { _all: true }, _max: { updatedAt: true } }),
      db.backend.aggregate({ _count: { _all: true }, _max: { updatedAt: true } }),
    ]);

  async function full(): Promise<FarmRow[]> {
    const [f, b] = await aggregates();
    const rows = await loadFarms(db);
    byId = new Map(rows.map((r) => [r.id, r]));
    since = { farms: f._max.updatedAt, backends: b._max.updatedAt };
    sorted = rows;
    return rows;
  }

  async function rows(): Promise<FarmRow[]> {
    if (!since) return full();
    const margin = (d: Date | null) => new Date((d?.getTime() ?? 0) - RECENT_MARGIN_MS);
    const [[f, b], farms, backends] = await Promise.all([
      aggregates(),
      db.farm.findMany({ where: { updatedAt: { gte: margin(since.farms) } }, select: { id: true } }),
      db.backend.findMany({ where: { updatedAt: { gte: margin(since.backends) } }, select: { farmId: true }, distinct: ["farmId"] }),
    ]);
    const ids = [...new Set([...farms.map((x) => x.id), ...backends.map((x) => x.farmId)])];
    if (ids.length > 200) return full();
    if (ids.length) {
      const fresh = (await db.farm.findMany({ where: { id: { in: ids } }, include: INCLUDE })) as FarmRow[];
      const found = new Set(fresh.map((r) => r.id));
      for (const id of ids) if (!found.has(id)) byId.delete(id);
      for (const r of fresh) byId.set(r.id, r);
      sorted = null;
    }
    let backendCount = 0;
    for (const r of byId.values()) backendCount += r.backends.length;
    // A farm or backend deleted without a trace in the update times: start over.
    if (byId.size !== f._count._all || backendCount !== b._count._all) return full();
    since = { farms: f._max.updatedAt, backends: b._max.updatedAt };
    sorted ??= [...byId.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return sorted;
  }

  return {
    rows,
    /** The row as the schema's input, the same object for as long as the row is unchanged. */
    input(row: FarmRow): FarmInput {
      let i = inputs.get(row);
      if (!i) inputs.set(row, (i = rowToInput(row)));
      return i;
    },
    forget() {
      since = null;
    },
  };
}

function faultOf(file: string | null | undefined): "nat" | "mangle" | undefined {
  if (!file || !existsSync(file)) return undefined;
  const table = readFileSync(file, "utf8").trim();
  return table === "nat" || table === "mangle" ? table : undefined;
}

/** The farm's own columns as the database stores them (the health check as JSON text). */
export function farmColumns(farm: Farm) {
  return {
    vip: farm.vip,
    ports: farm.ports,
    protocol: farm.protocol,
    mode: farm.mode,
    status: farm.status,
    scheduler: farm.scheduler,
    persistence: farm.persistence,
    persistenceTtl: farm.persistenceTtl,
    healthcheck: farm.healthcheck ? JSON.stringify(farm.healthcheck) : null,
    applyState: "pending",
    applyError: null,
  };
}

export function backendColumns(b: Farm["backends"][number], position: number) {
  return { position, ip: b.ip, port: b.port, weight: b.weight, mark: b.mark!, state: b.state, priority: b.priority };
}

/**
 * Writes one farm in one transaction. Backends are matched by mark (the
 * kernel's identity of a backend) and updated in place, so what others keep
 * on a backend row (its id, the health checker's last probe) survives an edit;
 * positions are the renderer's indexes and are renumbered 0..n-1.
 */
async function writeFarm(db: PrismaClient, farm: Farm, existingId: number | null): Promise<void> {
  const columns = farmColumns(farm);
  const backends = farm.backends.map((b, position) => backendColumns(b, position));
  await db.$transaction(async (tx) => {
    if (existingId === null) {
      await tx.farm.create({ data: { name: farm.name, ...columns, backends: { create: backends } } });
      return;
    }
    await tx.farm.update({ where: { id: existingId }, data: columns });
    const before = await tx.backend.findMany({ where: { farmId: existingId } });
    const wanted = new Map(backends.map((b) => [b.mark, b]));
    const gone = before.filter((b) => !wanted.has(b.mark)).map((b) => b.id);
    if (gone.length) await tx.backend.deleteMany({ where: { id: { in: gone } } });
    const kept = before.filter((b) => wanted.has(b.mark));
    const differs = (b: (typeof before)[number]) => {
      const w = wanted.get(b.mark)!;
      return (Object.keys(w) as (keyof typeof w)[]).some((k) => (b as Record<string, unknown>)[k] !== w[k]);
    };
    const changed = kept.filter(differs);
    // (farm, position) and (farm, ip, port) are unique and two backends may swap:
    // when a position or an address moves, everything moves out of the way first.
    const moves = changed.some((b) => {
      const w = wanted.get(b.mark)!;
      return w.position !== b.position || w.ip !== b.ip || w.port !== b.port;
    });
    if (moves) for (const [i, b] of changed.entries()) await tx.backend.update({ where: { id: b.id }, data: { position: -1 - i, ip: `~${b.mark}` } });
    for (const b of changed) await tx.backend.update({ where: { id: b.id }, data: wanted.get(b.mark)! });
    const known = new Set(kept.map((b) => b.mark));
    const fresh = backends.filter((b) => !known.has(b.mark));
    if (fresh.length) await tx.backend.createMany({ data: fresh.map((b) => ({ ...b, farmId: existingId })) });
  });
}

async function logApply(
  db: PrismaClient,
  entry: { target: string; action: string; farms: string[]; result: "ok" | "failed" | "noop"; error?: string | null; durationMs: number; summary?: string },
) {
  await db.applyLog.create({
    data: {
      target: entry.target,
      action: entry.action,
      farms: JSON.stringify(entry.farms),
      result: entry.result,
      error: entry.error ?? null,
      durationMs: Math.round(entry.durationMs),
      summary: entry.summary ?? null,
    },
  });
}

function describeApplyError(e: unknown): { message: string; iptables: string } {
  if (e instanceof ApplyError) return { message: e.message, iptables: e.iptablesMessage.trim() };
  const message = e instanceof Error ? e.message : String(e);
  return { message, iptables: message };
}

export function createFarmService(deps: ServiceDeps) {
  const { db } = deps;
  const farmSet = createFarmSetCache(db);
  const targetLabel = deps.target ? formatTarget(deps.target) : "none";

  /**
   * Applies the database's farm set to the kernel, scoped to `name`, and
   * records the result. `removing`: the farm is absent from the set and its
   * row is deleted only once the kernel no longer holds its rules.
   *
   * The applier writes only `name`'s rules; should it report other farms as
   * changed (farmsChanged), they were written from their rows too: they are
   * marked applied and named in the log, so that no farm's state is left
   * saying something the kernel does not hold.
   */
  async function applyScoped(name: string, action: string, removing = false): Promise<MutationResult> {
    const rows = await farmSet.rows();
    const set = rows.map(farmSet.input);
    const focus = set.find((f) => f.name === name);
    const warnings = focus && !removing ? farmWarnings([focus]) : [];
    const withWarnings = (r: MutationResult): MutationResult => (r.ok && warnings.length ? { ...r, warnings: [...new Set(warnings)] } : r);
    if (!deps.target) {
      if (removing) {
        await db.farm.delete({ where: { name } });
        return { ok: true, farm: name, outcome: "removed", message: `Farm ${name} deleted (no target: nothing to remove from the kernel).` };
      }
      return withWarnings({ ok: true, farm: name, outcome: "pending", message: `Farm ${name} saved. Applying is disabled (target none): the change is pending.` });
    }
    const wanted = removing ? set.filter((f) => f.name !== name) : set;
    const started = performance.now();
    try {
      await deps.prepareTarget?.();
      const r = await applyFarms(wanted, { target: deps.target, only: [name], injectFault: faultOf(deps.faultFile) });
      warnings.push(...(r.warnings ?? []));
      const s = r.stats;
      const summary = r.changed
        ? `${s.rulesAdded} rule(s) added, ${s.rulesDeleted} removed; ${s.chainsCreated} chain(s) created, ${s.chainsRewritten} rewritten, ${s.chainsDeleted} deleted (${r.mode})`
        : "the kernel already held these rules";
      const touched = [...new Set([name, ...(r.farmsChanged ?? [])])];
      await logApply(db, { target: targetLabel, action, farms: touched, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary });
      const inSet = new Set(wanted.map((f) => f.name));
      const nowApplied = touched.filter((n) => inSet.has(n));
      if (nowApplied.length) await db.farm.updateMany({ where: { name: { in: nowApplied } }, data: { applyState: "applied", applyError: null, appliedAt: new Date() } });
      if (removing) {
        await db.farm.delete({ where: { name } });
        return { ok: true, farm: name, outcome: "removed", message: `Farm ${name} deleted and its rules removed.` };
      }
      return withWarnings({ ok: true, farm: name, outcome: r.changed ? "applied" : "unchanged", message: `Farm ${name} applied: ${summary}.` });
    } catch (e) {
      const { message, iptables } = describeApplyError(e);
      const error = removing ? `removing the farm's rules failed: ${message}` : message;
      await logApply(db, { target: targetLabel, action, farms: [name], result: "failed", error, durationMs: performance.now() - started });
      await db.farm.update({ where: { name }, data: { applyState: "failed", applyError: error } });
      if (e instanceof ApplyError && e.rolledBack === "rollback-failed") {
        // The kernel may now hold a half-written shard: the farms that share it cannot be trusted to be applied either.
        const shard = shardOf(name);
        const sharing = set.filter((f) => f.name !== name && shardOf(f.name) === shard).map((f) => f.name);
        if (sharing.length) {
          await db.farm.updateMany({ where: { name: { in: sharing }, applyState: "applied" }, data: { applyState: "failed", applyError: `a failed change of farm ${name} in the same shard could not be undone: ${message}` } });
        }
      }
      return { ok: false, reason: "apply-failed", farm: name, message: `Applying farm ${name} failed: ${iptables}`, iptables };
    }
  }

  /**
   * Validates `next` against every other farm, allocates marks and writes;
   * the farm written, or why not. Throws when the write met another
   * process's (writeFresh does it again).
   */
  async function save(next: FarmInput, existing: FarmRow | null): Promise<{ farm: string } | MutationResult> {
    const rows = await farmSet.rows();
    const others = rows.filter((r) => r.id !== existing?.id).map(farmSet.input);
    const checked = validateSetFast(others, next);
    if (!checked.ok) return { ok: false, reason: "invalid", message: checked.message, errors: checked.errors };
    // Existing backends carry their marks; new ones get the lowest free marks.
    const resolved = resolveMarks(checked.farms);
    const farm = resolved[resolved.length - 1]!;
    const refused = await localVipRefusal(farm);
    if (refused) return refused;
    await writeFarm(db, farm, existing?.id ?? null);
    return { farm: farm.name };
  }

  /**
   * The applier refuses a VIP that is one of the target's own (unlabelled)
   * addresses; asked before the write, that is a field error on "vip" with
   * nothing saved, not a farm saved as "failed". A target that cannot be
   * read yet (the lab still coming up) is left to the apply to report.
   */
  async function localVipRefusal(farm: Farm): Promise<MutationResult | null> {
    if (!deps.target) return null;
    try {
      await checkLocalVips(deps.target, [farm], 10_000);
      return null;
    } catch (e) {
      if (!(e instanceof FarmValidationError)) return null;
      const vip = e.issues.map((m) => m.replace(/^farm "[^"]*" › vip: /, ""));
      return { ok: false, reason: "invalid", message: "The farm was not saved: fix the highlighted fields.", errors: { vip } };
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
  async function writeFresh(action: string, write: () => Promise<{ farm: string } | MutationResult>): Promise<MutationResult> {
    const written = await retryOnConflict(
      write,
      () => {
        const message = "Another process kept changing the farms meanwhile: nothing was saved. Try again.";
        return { ok: false, reason: "invalid", message, errors: { _form: [message] } } satisfies MutationResult;
      },
      () => farmSet.forget(),
    );
    return "ok" in written ? written : applyScoped(written.farm, action);
  }

  async function mutate(name: string, action: string, change: (current: FarmInput) => FarmInput | string): Promise<MutationResult> {
    return serialized(() =>
      writeFresh(action, async () => {
        const row = await loadFarm(db, name);
        if (!row) return { ok: false, reason: "not-found", message: `There is no farm named "${name}".` };
        const next = change(rowToInput(row));
        if (typeof next === "string") return { ok: false, reason: "invalid", message: next, errors: { _form: [next] } };
        return save({ ...next, name: row.name }, row);
      }),
    );
  }

  return {
    listFarms: () => loadFarms(db),
    listFarmCounts: () => loadFarmCounts(db),
    /** Names only, in order: cheap at 5,000 farms. */
    listFarmNames: async () => (await db.farm.findMany({ select: { name: true }, orderBy: { name: "asc" } })).map((f) => f.name),
    getFarm: (name: string) => loadFarm(db, name),

    createFarm(input: FarmInput): Promise<MutationResult> {
      // A name already taken is caught by the set check, reported on "name" (also when another process took it meanwhile).
      return serialized(() => writeFresh("create", () => save(input, null)));
    },

    /**
     * Changes the farm's own settings. `healthcheck: null` removes the health
     * check; a field left out keeps its value. The whole resulting farm is
     * validated with the shared schema: bad input comes back as field errors
     * (`vip`, `healthcheck.timeout`) and nothing is written.
     */
    updateFarm(name: string, patch: FarmSettingsPatch, action = "update") {
      return mutate(name, action, (f) => {
        const { healthcheck, ...rest } = patch;
        const next: FarmInput = { ...f, ...rest };
        if (healthcheck === null) delete next.healthcheck;
        else if (healthcheck !== undefined) next.healthcheck = healthcheck;
        return next;
      });
    },

    setMode(name: string, mode: "nat" | "dnat") {
      return mutate(name, `mode ${mode}`, (f) => ({ ...f, mode }));
    },

    setStatus(name: string, status: "up" | "stopped") {
      return mutate(name, status === "up" ? "start" : "stop", (f) => ({ ...f, status }));
    },

    addBackend(name: string, backend: NonNullable<FarmInput["backends"]>[number]) {
      // A mark is never taken from the form: natfarm allocates it.
      const { mark: _ignored, ...rest } = backend;
      return mutate(name, "add backend", (f) => ({ ...f, backends: [...(f.backends ?? []), rest] }));
    },

    updateBackend(name: string, mark: number, patch: Partial<Omit<NonNullable<FarmInput["backends"]>[number], "mark">>) {
      return mutate(name, "edit backend", (f) => {
        const backends = f.backends ?? [];
        const i = backends.findIndex((b) => b.mark === mark);
        if (i === -1) return `Farm ${name} has no backend with mark 0x${mark.toString(16)}.`;
        return { ...f, backends: backends.map((b, k) => (k === i ? { ...b, ...patch, mark } : b)) };
      });
    },

    /**
     * What the health checker decides: a backend goes down or comes back. A
     * backend an operator put in maintenance stays there.
     */
    setBackendHealth(name: string, mark: number, health: "up" | "down") {
      return mutate(name, `health ${health}`, (f) => {
        const backends = f.backends ?? [];
        const b = backends.find((x) => x.mark === mark);
        if (!b) return `Farm ${name} has no backend with mark 0x${mark.toString(16)}.`;
        if (b.state === "maintenance") return f;
        return { ...f, backends: backends.map((x) => (x.mark === mark ? { ...x, state: health } : x)) };
      });
    },

    /**
     * Maintenance: "drain" stops new connections to the backend and lets the
     * open ones finish; "cut" also ends the open ones (their conntrack entries
     * go); "off" puts the backend back into service.
     */
    async setMaintenance(name: string, mark: number, mode: "drain" | "cut" | "off"): Promise<MutationResult> {
      const r = await mutate(name, mode === "off" ? "maintenance off" : `maintenance ${mode}`, (f) => {
        const backends = f.backends ?? [];
        if (!backends.some((b) => b.mark === mark)) return `Farm ${name} has no backend with mark 0x${mark.toString(16)}.`;
        return { ...f, backends: backends.map((b) => (b.mark === mark ? { ...b, state: mode === "off" ? "up" : "maintenance" } : b)) };
      });
      if (!r.ok || mode !== "cut" || !deps.target) return r;
      try {
        const n = await cutConnections(deps.target, mark);
        return { ...r, message: `${r.message} ${n} open connection(s) cut.` };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        return { ok: false, reason: "apply-failed", farm: name, message: `The backend is in maintenance, but cutting its connections failed: ${message}`, iptables: message };
      }
    },

    removeBackend(name: string, mark: number) {
      return mutate(name, "remove backend", (f) => {
        const backends = f.backends ?? [];
        if (!backends.some((b) => b.mark === mark)) return `Farm ${name} has no backend with mark 0x${mark.toString(16)}.`;
        return { ...f, backends: backends.filter((b) => b.mark !== mark) };
      });
    },

    /** Puts the database's rules for the farm back into the kernel (after drift or a failed apply). */
    reapply(name: string): Promise<MutationResult> {
      return serialized(async () => {
        if (!(await loadFarm(db, name))) return { ok: false, reason: "not-found", message: `There is no farm named "${name}".` };
        return applyScoped(name, "reapply");
      });
    },

    deleteFarm(name: string): Promise<MutationResult> {
      return serialized(async () => {
        if (!(await loadFarm(db, name))) return { ok: false, reason: "not-found", message: `There is no farm named "${name}".` };
        return applyScoped(name, "remove", true);
      });
    },

    /**
     * Makes natfarm's rules in the kernel exactly the database's farms (a
     * full, unscoped apply): after an import, or to clear rules of farms the
     * database no longer holds.
     */
    applyAll(action = "apply all"): Promise<MutationResult> {
      return serialized(async () => {
        if (!deps.target) return { ok: false, reason: "invalid", message: "Applying is disabled (target none).", errors: { _form: ["Applying is disabled (target none)."] } };
        // A farm another process writes from now on is not what this apply reads: it is not marked applied.
        const readAt = new Date();
        const rows = await loadFarms(db);
        const names = rows.map((r) => r.name);
        const inputs = rows.map(rowToInput);
        const started = performance.now();
        try {
          await deps.prepareTarget?.();
          const r = await applyFarms(inputs, { target: deps.target, injectFault: faultOf(deps.faultFile) });
          const s = r.stats;
          const summary = `${rows.length} farm(s): ${s.rulesAdded} rule(s) added, ${s.rulesDeleted} removed`;
          // Every farm of the database, and any farm whose rules left the kernel (gone from the database).
          const touched = [...new Set([...names, ...(r.farmsChanged ?? [])])];
          await logApply(db, { target: targetLabel, action, farms: touched, result: r.changed ? "ok" : "noop", durationMs: r.durationMs, summary });
          await db.farm.updateMany({ where: { updatedAt: { lte: readAt } }, data: { applyState: "applied", applyError: null, appliedAt: new Date() } });
          const warnings = [...new Set([...farmWarnings(inputs), ...(r.warnings ?? [])])];
          return { ok: true, farm: "*", outcome: r.changed ? "applied" : "unchanged", message: `Applied ${summary}.`, ...(warnings.length ? { warnings } : {}) };
        } catch (e) {
          const { message, iptables } = describeApplyError(e);
          await logApply(db, { target: targetLabel, action, farms: names, result: "failed", error: message, durationMs: performance.now() - started });
          // The kernel kept its previous rules: a farm it held ("applied", unchanged since) still holds. Only a
          // refused change that could not be undone leaves every farm in doubt.
          const inDoubt = e instanceof ApplyError && e.rolledBack === "rollback-failed";
          await db.farm.updateMany({ where: inDoubt ? {} : { applyState: { not: "applied" } }, data: { applyState: "failed", applyError: message } });
          return { ok: false, reason: "apply-failed", farm: "*", message: `Applying all farms failed: ${iptables}`, iptables };
        }
      });
    },

    history(limit = 500) {
      return db.applyLog.findMany({ orderBy: { id: "desc" }, take: limit });
    },

    /** The health checker's state changes, newest first (one farm's, or every farm's). */
    healthEvents(opts: { farm?: string; limit?: number } = {}) {
      return db.healthEvent.findMany({ where: opts.farm ? { farm: opts.farm } : {}, orderBy: { id: "desc" }, take: opts.limit ?? 50 });
    },
  };
}

export type FarmService = ReturnType<typeof createFarmService>;
