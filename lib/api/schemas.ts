import { z } from "zod";
import type { TablesChain } from "../applier/tables.ts";
import type { FarmRuleDrift } from "../applier/drift.ts";
import { AUDIT_KINDS, AUDIT_RESULTS, AuditFilterSchema, type auditRecord } from "../auth/audit.ts";
import type { LiveHealthEvent } from "../console/live-types.ts";
import type { TablesView } from "../console/tables-view.ts";
import { BACKEND_STATES, BackendSchema, FARM_NAME_MAX, FarmSchema, MODES } from "../farms/schema.ts";
import type { DriftOverview } from "../service/drift.ts";
import type { LabRunResult } from "../service/lab.ts";
import { CountersResetInputSchema } from "../service/counters-reset.ts";

/**
 * Every body, query and answer of /api/v1 as a zod schema: the route
 * handlers parse requests with these, the OpenAPI document's schemas are
 * generated from them (z.toJSONSchema, lib/api/openapi.ts), and the
 * contract test checks every answer against what that generates. The farm
 * and its backends are the declarative file format's own schemas. Answers
 * are strict objects, so a field the document does not declare fails the
 * contract test. Where an answer is built by the console's own code (live
 * tables, drift, lab runs, health events), a compile-time check at the end
 * keeps the schema and that code's type the same.
 */

export const IssueSchema = z.strictObject({
  path: z.string().describe('the field, dotted: "backends.1.weight" ("" for the request as a whole)'),
  message: z.string(),
});

export const ErrorSchema = z
  .strictObject({
    error: z.string().describe("one sentence: what was refused and why; nothing was changed unless it says so"),
    issues: z.array(IssueSchema).describe("the fields at fault, with the message the CLI gives for each"),
    farm: z.string().optional().describe("502: the farm that was saved but whose rules the kernel refused"),
    iptables: z.string().optional().describe("502: iptables' own message"),
    farmConfig: FarmSchema.optional().describe("502: the farm as saved (marked failed until fixed or re-applied)"),
    saved: z.boolean().optional().describe("503: whether the database took the change (it is then pending)"),
    agentUnavailable: z.boolean().optional().describe("503: the natfarm agent is not running"),
  })
  .describe("An error. 400s name every field at fault in issues.");

export const UnauthorizedSchema = z.strictObject({ error: z.string() }).describe("No valid login: no session cookie, or an API token that is unknown, expired or revoked.");

export const OUTCOMES = ["applied", "unchanged", "pending", "removed"] as const;

export const ResultSchema = z
  .strictObject({
    farm: z.string().describe('the farm changed ("*" for every farm)'),
    outcome: z.enum(OUTCOMES).describe("applied: the kernel holds it now; unchanged: it already did; pending: saved, applying is disabled (target none); removed: deleted"),
    message: z.string(),
    warnings: z.array(z.string()).optional(),
  })
  .describe("What a change did.");

export const FarmChangeSchema = ResultSchema.extend({
  farmConfig: FarmSchema.optional().describe("the farm as stored now (the file format), its version in the ETag header"),
}).describe("What a change did, and the farm as stored now.");

export const BackendChangeSchema = FarmChangeSchema.extend({
  backend: BackendSchema.describe("the backend as stored now, its mark allocated by natfarm"),
}).describe("What adding a backend did, the new backend and the farm as stored now.");

export const FarmListSchema = z
  .strictObject({
    farms: z.array(FarmSchema),
    versions: z.record(z.string(), z.string()).describe("each farm's ETag by name"),
  })
  .describe("Every farm, importable as a farm file (natfarm import), and each one's version.");

export const FarmPatchSchema = z
  .record(z.string(), z.unknown())
  .describe(
    "A JSON merge patch (RFC 7386) of the farm's top-level fields (those of Farm): a field given replaces the stored one (backends as a whole list, healthcheck as a whole object), null removes an optional one (healthcheck). The result is validated as a whole Farm.",
  );

export const BackendListSchema = z.strictObject({ farm: z.string(), backends: z.array(BackendSchema) }).describe("A farm's backends in the file format, in order; the farm's version in the ETag header.");

/** A new backend: the file format's backend without a mark (natfarm allocates it). */
export const BackendCreateSchema = BackendSchema.omit({ mark: true }).describe("A new backend (natfarm allocates its mark).");

/** The fields of a backend a PATCH may change; those left out stay (so no defaults: an absent weight is not weight 1). */
const backend = BackendSchema.shape;
export const BackendPatchSchema = z
  .strictObject({
    ip: backend.ip.optional(),
    port: backend.port.optional(),
    weight: backend.weight.removeDefault().optional(),
    state: backend.state.removeDefault().optional(),
    priority: backend.priority.removeDefault().optional(),
  })
  .describe("The backend's fields to change; those left out stay.");

export const NoBodySchema = z.strictObject({}).describe("No body, or an empty object.");

export const ModeBodySchema = z.strictObject({ mode: z.enum(MODES, { error: 'mode must be "nat" (SNAT to the VIP) or "dnat"' }) }).describe("The farm's NAT type.");

const connections = "connections must be a whole number from 1 to 5000";
export const LabTrafficBodySchema = z
  .strictObject({
    farm: z.string({ error: "farm must be a farm's name" }).min(1, { error: "farm must be a farm's name" }).max(64, { error: "farm must be a farm's name" }),
    connections: z.number({ error: connections }).int({ error: connections }).min(1, { error: connections }).max(5000, { error: connections }),
  })
  .describe("Send this many new connections from the lab's client to the farm's VIP (its first port).");

// ------------------------------------------------------------------ queries

export const HealthEventsQuerySchema = z.strictObject({
  farm: z.string().trim().max(64, { error: "farm must be at most 64 characters" }).optional().describe("only this farm's events"),
  limit: z.coerce.number({ error: "limit must be a whole number from 1 to 500" }).int({ error: "limit must be a whole number from 1 to 500" }).min(1, { error: "limit must be a whole number from 1 to 500" }).max(500, { error: "limit must be a whole number from 1 to 500" }).default(200).describe("at most this many, newest first"),
});

export const TablesQuerySchema = z.strictObject({
  farm: z.string().trim().max(FARM_NAME_MAX, { error: `farm must be at most ${FARM_NAME_MAX} characters` }).optional().describe("only this farm's rules"),
  scope: z.enum(["natfarm", "all"], { error: 'scope must be "natfarm" or "all"' }).default("natfarm").describe("natfarm: natfarm's chains; all: every chain of mangle and nat, foreign rules too"),
});

export const AuditQuerySchema = AuditFilterSchema.extend({
  format: z.enum(["json", "jsonl"], { error: 'format must be "json" or "jsonl"' }).optional().describe("jsonl: one JSON entry per line (as Accept: application/x-ndjson)"),
});

// ------------------------------------------------------------------ the configuration history

const revisionNumber = (what: string) =>
  z.coerce.number({ error: `${what} must be a revision number (a whole number from 1)` }).int({ error: `${what} must be a revision number (a whole number from 1)` }).min(1, { error: `${what} must be a revision number (a whole number from 1)` }).max(2_147_483_647, { error: `${what} must be a revision number (a whole number from 1)` });

export const RevisionsQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: "limit must be a whole number from 1 to 1000" }).int({ error: "limit must be a whole number from 1 to 1000" }).min(1, { error: "limit must be a whole number from 1 to 1000" }).max(1000, { error: "limit must be a whole number from 1 to 1000" }).default(100).describe("at most this many, newest first"),
  before: revisionNumber("before").optional().describe("revisions older than this one (the previous page's next)"),
});

export const RevisionDiffQuerySchema = z.strictObject({
  to: revisionNumber("to").optional().describe("the revision to compare with (default: the configuration now)"),
});

const RevisionSummarySchema = z.strictObject({
  id: z.number().int(),
  at: z.string().describe("ISO 8601"),
  author: z.string().describe('the user (and the API token: "alice (token 3)"), or "cli (<system user>)"'),
  via: z.enum(["console", "api", "cli", "system"]),
  summary: z.string(),
  farms: z.array(z.string()).describe("the farms it changed"),
});

export const RevisionListSchema = z
  .strictObject({ revisions: z.array(RevisionSummarySchema), next: z.number().int().nullable().describe("before= for the next page, null at the end") })
  .describe("Revisions of the whole configuration, newest first.");

export const RevisionSchema = RevisionSummarySchema.extend({
  changes: z.array(z.strictObject({ farm: z.string(), before: FarmSchema.nullable().describe("null: the farm did not exist"), after: FarmSchema.nullable().describe("null: the farm was deleted") })),
}).describe("One revision: who, when, what, and each farm it changed before and after (the file format; a backend down by health check reads as in service).");

const DiffLineSchema = z.strictObject({ op: z.enum([" ", "+", "-"]), line: z.string() });
export const RevisionDiffSchema = z
  .strictObject({
    from: z.number().int(),
    to: z.number().int().nullable().describe("null: the configuration now"),
    diffs: z.array(z.strictObject({ farm: z.string(), kind: z.enum(["created", "deleted", "changed"]), words: z.string(), json: z.array(DiffLineSchema), rules: z.array(DiffLineSchema) })),
    text: z.string().describe("the same as a unified-diff-like text"),
  })
  .describe("What differs between two configurations: per farm, in words, its JSON and its rendered rules as line diffs.");

// ------------------------------------------------------------------ staged changes (lib/api/staged.ts)

export const StagedQuerySchema = z.strictObject({
  live: z.enum(["0", "1"], { error: 'live must be "0" or "1"' }).default("1").describe("1 (default): also compare each pending farm with the kernel's rules now; 0: only with the configuration last applied"),
});

export const StagedApplyBodySchema = z.strictObject({
  savepoint: z.boolean({ error: "savepoint must be true or false" }).default(false).describe("true: unless confirmed (confirmStaged) within NATFARM_SAVEPOINT_SECONDS, the configuration before the apply comes back by itself"),
});

export const StagingSettingSchema = z.strictObject({
  enabled: z.boolean({ error: "enabled must be true or false" }).describe("the installation setting: edits are staged until Apply changes"),
});

export const StagedViewSchema = z
  .strictObject({
    enabled: z.boolean().describe("the installation setting (the API and the CLI stage when it is on)"),
    tracking: z.boolean().describe("what the kernel holds is tracked: the installation setting or a console login stages, or changes are pending"),
    revisions: z.array(RevisionSummarySchema).describe("the pending revisions (after the one the kernel holds), newest first"),
    diffs: z
      .array(z.strictObject({ farm: z.string(), kind: z.enum(["created", "deleted", "changed"]), words: z.string(), json: z.array(DiffLineSchema), rules: z.array(DiffLineSchema) }))
      .describe("per pending farm: in words, its JSON and its rendered rules from the configuration last applied to the one now"),
    live: z
      .strictObject({
        farms: z.array(z.strictObject({ farm: z.string(), add: z.array(z.string()), remove: z.array(z.string()), drifted: z.boolean().describe("the kernel no longer holds what was last applied for it (changed outside natfarm)") })),
        omitted: z.array(z.string()).describe("pending farms beyond the per-view cap, not read live"),
        error: z.string().nullable().describe("the kernel could not be read"),
      })
      .nullable()
      .describe("what Apply changes adds to and removes from the kernel as it is now, per pending farm; null when not asked for, nothing is pending or applying is disabled"),
    savepoint: z.strictObject({ until: z.string().describe("ISO 8601"), revision: z.number().int().nullable() }).nullable().describe("an apply waiting for its confirmation"),
    lastOutcome: z.string().nullable().describe("what the last savepoint did"),
    text: z.string().describe("the diffs as a unified-diff-like text"),
  })
  .describe("The staged (pending) changes: what Apply changes commits, and any apply waiting under its savepoint.");

export const BackupSchema = z
  .strictObject({ farms: z.array(FarmSchema) })
  .describe("The whole configuration as a farm file (natfarm export / natfarm config backup), marks included: what restoreBackup takes.");

// ------------------------------------------------------------------ answers built by the console's code

const MarkStatsSchema = z.strictObject({ established: z.number(), pending: z.number(), closing: z.number(), total: z.number() });

export const TablesViewSchema = z
  .strictObject({
    at: z.string(),
    tables: z.array(
      z.strictObject({
        name: z.string().describe("mangle or nat"),
        chains: z.array(
          z.strictObject({
            name: z.string(),
            policy: z.string().nullable().describe("a built-in chain's policy"),
            owned: z.boolean().describe("a chain natfarm owns"),
            rules: z.array(
              z.strictObject({
                spec: z.string().describe("the rule as iptables-save prints it after -A <chain>"),
                packets: z.number(),
                bytes: z.number(),
                target: z.string().nullable(),
                comment: z.string().nullable(),
                owned: z.boolean().describe("natfarm wrote it"),
                farm: z.string().nullable().describe("the farm whose rule it is"),
                backend: z.number().nullable().describe("the backend's index in its farm"),
              }),
            ),
          }),
        ),
      }),
    ),
    hidden: z.number().describe("rules left out (at most 600 come back)"),
    moreChains: z.number().describe("natfarm chains not read"),
  })
  .describe("The live mangle and nat tables with their packet and byte counters, as the Live tables page shows them.");

export const DriftOverviewSchema = z
  .strictObject({
    drift: z.array(z.string()).describe("farms marked applied whose live rules differ from what natfarm wrote"),
    liveError: z.string().nullable().describe("why the kernel could not be read"),
    agentUnavailable: z.boolean().optional(),
  })
  .describe("Which farms have drifted.");

export const FarmDriftSchema = z
  .strictObject({
    farm: z.string(),
    drift: z
      .strictObject({
        inSync: z.boolean(),
        missing: z.array(z.string()).describe("`table chain spec` lines wanted but not live"),
        unexpected: z.array(z.string()).describe("`table chain spec` lines live but not wanted"),
      })
      .nullable()
      .describe("null when there is no target or the kernel could not be read"),
    liveError: z.string().nullable(),
    agentUnavailable: z.boolean().optional(),
  })
  .describe("One farm's rules compared with the kernel's.");

export const HealthEventSchema = z.strictObject({
  id: z.number(),
  at: z.string(),
  farm: z.string(),
  backend: z.string(),
  mark: z.number(),
  from: z.string(),
  to: z.string(),
  detail: z.string(),
});
export const HealthEventsSchema = z.strictObject({ events: z.array(HealthEventSchema) }).describe("The health checker's state changes, newest first.");

export const StatisticsSchema = z
  .strictObject({
    farm: z.string(),
    at: z.string(),
    status: z.enum(["running", "degraded", "stopped", "failed", "pending", "drift", "critical"]).describe("the farm's state as the console shows it (drift is not read here: see drift)"),
    backends: z.array(
      z.strictObject({
        mark: z.string().describe("the backend's mark, hex"),
        ip: z.string(),
        port: z.number().nullable(),
        weight: z.number(),
        state: z.enum(BACKEND_STATES),
        share: z.number().describe("0..1: the share of new connections the rules give it (after the kernel's rounding)"),
        probability: z.string().nullable().describe("its rule's match as iptables prints it; null when it has no rule (not up)"),
        healthDetail: z.string().nullable(),
        healthAt: z.string().nullable(),
        connections: MarkStatsSchema.nullable().describe("conntrack's count of its connections (by mark); null without statistics"),
      }),
    ),
    totals: MarkStatsSchema.nullable(),
    statsNote: z.string().nullable().describe("why there are no statistics"),
    agentUnavailable: z.boolean(),
  })
  .describe("Per backend: the share the rules give and conntrack's connection counts, as the farm page shows them.");

export const AuditRecordSchema = z.strictObject({
  id: z.number(),
  at: z.string(),
  actor: z.string().nullable().describe("the user (or cli:<system user>)"),
  via: z.string().describe("session, token, cli or anonymous"),
  address: z.string().nullable().describe("the client's address"),
  action: z.string(),
  kind: z.enum(AUDIT_KINDS),
  farm: z.string().nullable(),
  result: z.enum(AUDIT_RESULTS),
  detail: z.string().nullable().describe("the message shown, iptables' own on a refused apply, the farm before and after"),
});
export const AuditPageSchema = z
  .strictObject({
    entries: z.array(AuditRecordSchema),
    next: z.number().nullable().describe("the next (older) page: pass it as before; null when this was the last"),
  })
  .describe("Audit entries, newest first.");

export const LabRunSchema = z
  .strictObject({
    farm: z.string(),
    vip: z.string(),
    port: z.number(),
    protocol: z.enum(["tcp", "udp"]),
    connections: z.number(),
    ok: z.number().describe("connections that were answered"),
    failed: z.number(),
    errors: z.array(z.strictObject({ message: z.string(), count: z.number() })),
    backends: z.array(
      z.strictObject({
        index: z.number(),
        ip: z.string(),
        port: z.number().nullable(),
        weight: z.number(),
        state: z.string(),
        mark: z.number(),
        expected: z.number().describe("0..1: the share its weight promises"),
        count: z.number(),
        observed: z.number().describe("0..1: the share it got"),
        peers: z.array(z.strictObject({ address: z.string(), count: z.number() })).describe("source addresses it saw: the VIP (nat) or the client (dnat)"),
      }),
    ),
    strangers: z.array(z.strictObject({ name: z.string(), count: z.number() })).describe("answers from lab backends that are not this farm's"),
    durationMs: z.number(),
  })
  .describe("Where the lab's test connections landed, beside the shares the weights promise.");

/** POST /api/v1/tables/reset-counters: the body is the service's own input schema (the console's form and the CLI's --farm go through it too). */
export const CountersResetBodySchema = CountersResetInputSchema;
export const CountersResetSchema = z
  .strictObject({
    ok: z.literal(true),
    message: z.string().describe("what was reset, and what was left as it was"),
    target: z.string().describe("the kernel reset: this console's node (host or netns:<name>)"),
    engine: z.enum(["iptables", "nftables"]),
    scope: z.strictObject({ farm: z.string().nullable().describe("the farm whose counters were reset; null: all of natfarm's") }),
    chains: z.number().int().describe("iptables: natfarm chains zeroed whole"),
    counters: z.number().int().describe("counters zeroed: iptables rules, or nftables backends set elements"),
    packets: z.number().describe("what those counters held just before"),
    bytes: z.number(),
    payload: z.string().describe("what was written: -Z lines for iptables-restore, or nft commands"),
    durationMs: z.number(),
  })
  .describe("What a counter reset did. Other software's counters and natfarm's jumps from the built-in chains are never reset.");

export const OpenApiDocumentSchema = z
  .looseObject({ openapi: z.literal("3.1.0"), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) })
  .describe("An OpenAPI 3.1 document.");

/** The components of the OpenAPI document, by name. */
export const COMPONENTS = {
  Farm: FarmSchema,
  FarmPatch: FarmPatchSchema,
  FarmList: FarmListSchema,
  Backend: BackendSchema,
  BackendList: BackendListSchema,
  BackendCreate: BackendCreateSchema,
  BackendPatch: BackendPatchSchema,
  NoBody: NoBodySchema,
  ModeBody: ModeBodySchema,
  LabTrafficBody: LabTrafficBodySchema,
  CountersResetBody: CountersResetBodySchema,
  CountersReset: CountersResetSchema,
  Result: ResultSchema,
  FarmChange: FarmChangeSchema,
  BackendChange: BackendChangeSchema,
  TablesView: TablesViewSchema,
  DriftOverview: DriftOverviewSchema,
  FarmDrift: FarmDriftSchema,
  HealthEvents: HealthEventsSchema,
  Statistics: StatisticsSchema,
  AuditRecord: AuditRecordSchema,
  AuditPage: AuditPageSchema,
  LabRun: LabRunSchema,
  RevisionList: RevisionListSchema,
  Revision: RevisionSchema,
  RevisionDiff: RevisionDiffSchema,
  Backup: BackupSchema,
  StagedView: StagedViewSchema,
  StagedApplyBody: StagedApplyBodySchema,
  StagingSetting: StagingSettingSchema,
  Error: ErrorSchema,
  Unauthorized: UnauthorizedSchema,
  OpenApiDocument: OpenApiDocumentSchema,
} as const satisfies Record<string, z.ZodType>;
export type ComponentName = keyof typeof COMPONENTS;

// ------------------------------------------------------------------ the schemas above are the code's types

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameTypes: [
  Same<z.output<typeof TablesViewSchema>["tables"][number]["chains"][number], TablesChain>,
  Same<Omit<z.output<typeof TablesViewSchema>, "tables">, Omit<TablesView, "tables">>,
  Same<z.output<typeof DriftOverviewSchema>, DriftOverview>,
  Same<NonNullable<z.output<typeof FarmDriftSchema>["drift"]>, FarmRuleDrift>,
  Same<z.output<typeof HealthEventSchema>, LiveHealthEvent>,
  Same<Omit<z.output<typeof AuditRecordSchema>, "kind" | "result">, Omit<ReturnType<typeof auditRecord>, "kind" | "result">>,
  Same<z.output<typeof LabRunSchema>, LabRunResult>,
] = [true, true, true, true, true, true, true];
void sameTypes;
