import type { z } from "zod";
import type { Role } from "../auth/roles.ts";
import { AuditQuerySchema, HealthEventsQuerySchema, RevisionDiffQuerySchema, RevisionsQuerySchema, StagedQuerySchema, TablesQuerySchema, type ComponentName } from "./schemas.ts";

/**
 * Every operation of /api/v1, as data: the OpenAPI document
 * (lib/api/openapi.ts), the console's API reference page and the contract
 * test are all made from this one list. The error answers each operation
 * can give follow from what it takes (a body, a farm, a version, a role)
 * and are added by the document's generator, so they cannot be forgotten.
 */
export type Tag = "Farms" | "Backends" | "Operations" | "Live state" | "History" | "Audit" | "Lab" | "Meta";

export const TAGS: { name: Tag; description: string }[] = [
  { name: "Farms", description: "Farms in the declarative file format's JSON (the same schema as natfarm validate/import), each with a version (ETag)." },
  { name: "Backends", description: "A farm's backends and their maintenance. A backend is named by its mark (\"0x20c\" or 524): unique across all farms and fixed for its life, unlike its position or address." },
  { name: "Operations", description: "Starting and stopping farms, their NAT type, re-applying rules and drift: what the farm page's buttons do." },
  { name: "Live state", description: "The kernel's live tables with counters, each farm's connection statistics, the health checker's events." },
  { name: "History", description: "The configuration history: a revision of the whole configuration for every change (who, when, what), diffs between any two, revert to one, backup and restore; staged changes (pending until applied) and the savepoint." },
  { name: "Audit", description: "The audit log: who changed what, from where, with what result (admin only)." },
  { name: "Lab", description: "Test traffic through the console's lab (target lab only)." },
  { name: "Meta", description: "This document." },
];

export interface Operation {
  id: string;
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  tag: Tag;
  summary: string;
  description?: string;
  /** The lowest role that may call it. */
  role: Role;
  /** When a part of the operation needs a higher role than `role`. */
  roleNote?: string;
  /** Path parameters: a farm's name, a backend's mark. */
  farm?: boolean;
  backend?: boolean;
  /** The path names a configuration revision ({id}; 404 when it is not kept). */
  revision?: boolean;
  /** The body may be this many bytes (default BODY_LIMIT). */
  bodyLimit?: number;
  query?: z.ZodObject;
  /** The farm's version: "optional" (a stale one gets 409) or "required" (missing: 428). */
  ifMatch?: "optional" | "required";
  body?: { schema: ComponentName; required: boolean; mergePatch?: boolean };
  /** It reaches the kernel (through the agent): 502 when the kernel refuses, 503 when the agent is down. */
  kernel?: boolean;
  /** The body names a farm (404 when there is none). */
  farmInBody?: boolean;
  /** 409 for a reason of its own (besides a stale If-Match). */
  conflict?: string;
  ok: { status: 200 | 201; description: string; schema: ComponentName; etag?: boolean; location?: boolean; jsonl?: boolean };
  /** An example request body for the reference page's curl line. */
  example?: unknown;
}

/** What the generic query parameters mean (the audit filter's schema is shared with History and carries no descriptions). */
export const PARAM_NOTES: Record<string, string> = {
  actor: "only this user's entries",
  kind: "session (login, logout, setup), change (farms, backends, applies, lab runs), refused, user or token",
  result: "only entries with this result",
  since: "an ISO 8601 time, e.g. 2026-12-01T10:00:00Z: entries at or after it",
  until: "an ISO 8601 time: entries at or before it",
  before: "entries older than this id (the previous page's next)",
};

const farmBodyExample = {
  name: "web",
  vip: "198.51.100.250",
  ports: "443",
  protocol: "tcp",
  mode: "nat",
  backends: [
    { ip: "203.0.113.10", port: 443, weight: 50 },
    { ip: "203.0.113.11", port: 443, weight: 50 },
  ],
};

const change = (description: string) => ({ status: 200 as const, description, schema: "FarmChange" as const, etag: true });

export const OPERATIONS: Operation[] = [
  // ------------------------------------------------------------ farms
  { id: "listFarms", method: "get", path: "/api/v1/farms", tag: "Farms", role: "viewer", summary: "Every farm and its version", ok: { status: 200, description: "the farms", schema: "FarmList" } },
  {
    id: "createFarm",
    method: "post",
    path: "/api/v1/farms",
    tag: "Farms",
    role: "admin",
    summary: "Create a farm",
    description: "Validated with the file format's schema against every other farm, saved, and applied (this farm's rules only).",
    body: { schema: "Farm", required: true },
    kernel: true,
    ok: { status: 201, description: "created (and applied)", schema: "FarmChange", etag: true, location: true },
    example: farmBodyExample,
  },
  { id: "getFarm", method: "get", path: "/api/v1/farms/{name}", tag: "Farms", role: "viewer", summary: "One farm", farm: true, ok: { status: 200, description: "the farm", schema: "Farm", etag: true } },
  {
    id: "replaceFarm",
    method: "put",
    path: "/api/v1/farms/{name}",
    tag: "Farms",
    role: "operator",
    roleNote: "operator when only the farm's status and mode and its backends' weight and state change; admin for anything else",
    summary: "Replace the farm",
    description: "The whole farm (a GET's answer, changed). Backends given without a mark keep the stored mark of the same address and port. A PUT replaces everything, so it must say which version it replaces: If-Match is required (`*` to overwrite whatever is stored).",
    farm: true,
    ifMatch: "required",
    body: { schema: "Farm", required: true },
    kernel: true,
    ok: change("replaced (and applied)"),
    example: { ...farmBodyExample, backends: [{ ip: "203.0.113.10", port: 443, weight: 80 }, { ip: "203.0.113.11", port: 443, weight: 20 }] },
  },
  {
    id: "patchFarm",
    method: "patch",
    path: "/api/v1/farms/{name}",
    tag: "Farms",
    role: "operator",
    roleNote: "as replaceFarm: operator for status, mode, weights and states; admin for anything else",
    summary: "Change some of the farm's fields",
    description: "A JSON merge patch of the farm's top-level fields; the result is validated as a whole farm.",
    farm: true,
    ifMatch: "optional",
    body: { schema: "FarmPatch", required: true, mergePatch: true },
    kernel: true,
    ok: change("changed (and applied)"),
    example: { status: "stopped" },
  },
  {
    id: "deleteFarm",
    method: "delete",
    path: "/api/v1/farms/{name}",
    tag: "Farms",
    role: "admin",
    summary: "Delete the farm",
    description: "Its rules leave the kernel first; the farm is removed from the database once that worked.",
    farm: true,
    ifMatch: "optional",
    kernel: true,
    ok: { status: 200, description: "removed", schema: "Result" },
  },

  // ------------------------------------------------------------ backends
  { id: "listBackends", method: "get", path: "/api/v1/farms/{name}/backends", tag: "Backends", role: "viewer", summary: "A farm's backends", farm: true, ok: { status: 200, description: "the backends", schema: "BackendList", etag: true } },
  {
    id: "addBackend",
    method: "post",
    path: "/api/v1/farms/{name}/backends",
    tag: "Backends",
    role: "operator",
    summary: "Add a backend",
    description: "natfarm allocates its mark (a body with a mark is refused).",
    farm: true,
    ifMatch: "optional",
    body: { schema: "BackendCreate", required: true },
    kernel: true,
    ok: { status: 201, description: "added (and applied)", schema: "BackendChange", etag: true, location: true },
    example: { ip: "203.0.113.12", port: 443, weight: 20 },
  },
  { id: "getBackend", method: "get", path: "/api/v1/farms/{name}/backends/{mark}", tag: "Backends", role: "viewer", summary: "One backend", farm: true, backend: true, ok: { status: 200, description: "the backend", schema: "Backend", etag: true } },
  {
    id: "patchBackend",
    method: "patch",
    path: "/api/v1/farms/{name}/backends/{mark}",
    tag: "Backends",
    role: "operator",
    summary: "Change a backend (its weight, address, port, priority or state)",
    farm: true,
    backend: true,
    ifMatch: "optional",
    body: { schema: "BackendPatch", required: true },
    kernel: true,
    ok: change("changed (and applied)"),
    example: { weight: 30 },
  },
  { id: "removeBackend", method: "delete", path: "/api/v1/farms/{name}/backends/{mark}", tag: "Backends", role: "operator", summary: "Remove a backend", farm: true, backend: true, ifMatch: "optional", kernel: true, ok: change("removed from the farm (and applied)") },
  {
    id: "drainBackend",
    method: "post",
    path: "/api/v1/farms/{name}/backends/{mark}/drain",
    tag: "Backends",
    role: "operator",
    summary: "Drain a backend: no new connections, open ones continue",
    farm: true,
    backend: true,
    ifMatch: "optional",
    body: { schema: "NoBody", required: false },
    kernel: true,
    ok: change("in maintenance (and applied)"),
  },
  {
    id: "cutBackend",
    method: "post",
    path: "/api/v1/farms/{name}/backends/{mark}/cut",
    tag: "Backends",
    role: "operator",
    summary: "Cut a backend: no new connections, and its open ones end (conntrack entries deleted)",
    farm: true,
    backend: true,
    ifMatch: "optional",
    body: { schema: "NoBody", required: false },
    kernel: true,
    ok: change("in maintenance, connections cut"),
  },
  {
    id: "enableBackend",
    method: "post",
    path: "/api/v1/farms/{name}/backends/{mark}/enable",
    tag: "Backends",
    role: "operator",
    summary: "Put a backend back in service",
    farm: true,
    backend: true,
    ifMatch: "optional",
    body: { schema: "NoBody", required: false },
    kernel: true,
    ok: change("back in service (and applied)"),
  },

  // ------------------------------------------------------------ operations
  { id: "startFarm", method: "post", path: "/api/v1/farms/{name}/start", tag: "Operations", role: "operator", summary: "Start the farm (its rules go into the kernel)", farm: true, ifMatch: "optional", body: { schema: "NoBody", required: false }, kernel: true, ok: change("started") },
  { id: "stopFarm", method: "post", path: "/api/v1/farms/{name}/stop", tag: "Operations", role: "operator", summary: "Stop the farm (its rules leave the kernel; the farm stays)", farm: true, ifMatch: "optional", body: { schema: "NoBody", required: false }, kernel: true, ok: change("stopped") },
  {
    id: "setFarmMode",
    method: "post",
    path: "/api/v1/farms/{name}/mode",
    tag: "Operations",
    role: "operator",
    summary: "Switch the farm between NAT (SNAT to the VIP) and DNAT",
    farm: true,
    ifMatch: "optional",
    body: { schema: "ModeBody", required: true },
    kernel: true,
    ok: change("switched (and applied)"),
    example: { mode: "dnat" },
  },
  { id: "reapplyFarm", method: "post", path: "/api/v1/farms/{name}/reapply", tag: "Operations", role: "operator", summary: "Put the farm's rules back into the kernel (after drift or a failed apply)", farm: true, ifMatch: "optional", body: { schema: "NoBody", required: false }, kernel: true, ok: change("re-applied") },
  { id: "applyAll", method: "post", path: "/api/v1/apply", tag: "Operations", role: "operator", summary: "Re-apply every farm: natfarm's rules in the kernel become exactly the database's farms", body: { schema: "NoBody", required: false }, kernel: true, ok: { status: 200, description: "applied", schema: "Result" } },
  { id: "getDrift", method: "get", path: "/api/v1/drift", tag: "Operations", role: "viewer", summary: "Which farms' live rules differ from what natfarm wrote", ok: { status: 200, description: "the farms that drifted", schema: "DriftOverview" } },
  { id: "getFarmDrift", method: "get", path: "/api/v1/farms/{name}/drift", tag: "Operations", role: "viewer", summary: "One farm's rules compared with the kernel's: missing and unexpected lines", farm: true, ok: { status: 200, description: "the comparison", schema: "FarmDrift" } },

  // ------------------------------------------------------------ live state
  {
    id: "getTables",
    method: "get",
    path: "/api/v1/tables",
    tag: "Live state",
    role: "viewer",
    summary: "The live mangle and nat tables with packet and byte counters",
    description: "natfarm's rules attributed to their farm, foreign rules marked; at most 600 rules (hidden counts the others).",
    query: TablesQuerySchema,
    kernel: true,
    conflict: "applying is disabled (target none): there are no live tables",
    ok: { status: 200, description: "the tables", schema: "TablesView" },
  },
  // ---- reset counters (engineer A's block)
  {
    id: "resetCounters",
    method: "post",
    path: "/api/v1/tables/reset-counters",
    tag: "Live state",
    role: "operator",
    summary: "Reset natfarm's own counters to 0: one farm's, or all of natfarm's",
    description:
      "On this console's node only, in one transaction (iptables: -Z of natfarm's NATFARM-* chains, or of one farm's rules, in one iptables-restore; nftables: the backends set's elements). Other software's rules, chains and tables keep their counters, and so do natfarm's jumps from the built-in chains (zeroing those would zero other software's rules too). The traffic graphs keep their totals. Audited.",
    body: { schema: "CountersResetBody", required: false },
    farmInBody: true,
    kernel: true,
    conflict: "applying is disabled (target none): there are no live counters",
    ok: { status: 200, description: "the counters were reset", schema: "CountersReset" },
    example: { farm: "web" },
  },
  // ---- end of reset counters
  { id: "getFarmStatistics", method: "get", path: "/api/v1/farms/{name}/statistics", tag: "Live state", role: "viewer", summary: "Per backend: its share of new connections and conntrack's connection counts", farm: true, ok: { status: 200, description: "the statistics", schema: "Statistics" } },
  { id: "listHealthEvents", method: "get", path: "/api/v1/health-events", tag: "Live state", role: "viewer", summary: "The health checker's state changes, newest first", query: HealthEventsQuerySchema, ok: { status: 200, description: "the events", schema: "HealthEvents" } },

  // ------------------------------------------------------------ history
  { id: "listRevisions", method: "get", path: "/api/v1/config/revisions", tag: "History", role: "viewer", summary: "The configuration's revisions, newest first", query: RevisionsQuerySchema, ok: { status: 200, description: "the revisions", schema: "RevisionList" } },
  { id: "getRevision", method: "get", path: "/api/v1/config/revisions/{id}", tag: "History", role: "viewer", summary: "One revision: who, when, what, each changed farm before and after", revision: true, ok: { status: 200, description: "the revision", schema: "Revision" } },
  {
    id: "getRevisionConfig",
    method: "get",
    path: "/api/v1/config/revisions/{id}/farms",
    tag: "History",
    role: "viewer",
    summary: "A revision's whole configuration as a farm file (importable, restorable)",
    revision: true,
    ok: { status: 200, description: "the farm file", schema: "Backup" },
  },
  {
    id: "diffRevision",
    method: "get",
    path: "/api/v1/config/revisions/{id}/diff",
    tag: "History",
    role: "viewer",
    summary: "What differs from this revision to another (default: to the configuration now): farms and rendered rules",
    revision: true,
    query: RevisionDiffQuerySchema,
    ok: { status: 200, description: "the differences", schema: "RevisionDiff" },
  },
  {
    id: "revertRevision",
    method: "post",
    path: "/api/v1/config/revisions/{id}/revert",
    tag: "History",
    role: "admin",
    summary: "Make this revision's configuration the current one (a new revision), applied in one kernel transaction",
    description: "Admin: a revert can create, change and delete any farm. A backend the health checker has down now stays down.",
    revision: true,
    body: { schema: "NoBody", required: false },
    kernel: true,
    ok: { status: 200, description: "reverted (and applied)", schema: "Result" },
  },
  { id: "getBackup", method: "get", path: "/api/v1/config/backup", tag: "History", role: "viewer", summary: "The whole configuration as a farm file (the backup restoreBackup takes)", ok: { status: 200, description: "the backup", schema: "Backup" } },
  {
    id: "restoreBackup",
    method: "post",
    path: "/api/v1/config/restore",
    tag: "History",
    role: "admin",
    summary: "Make a backup the whole configuration (a new revision), applied in one kernel transaction",
    description: "Validated with the farm file's schema as a whole set first: a bad file changes nothing and says why (400 with every issue). Farms the backup does not list are deleted. Up to 32 MiB.",
    body: { schema: "Backup", required: true },
    bodyLimit: 32 * 1024 * 1024,
    kernel: true,
    ok: { status: 200, description: "restored (and applied)", schema: "Result" },
    example: { farms: [farmBodyExample] },
  },

  // ------------------------------------------------------------ staged changes (lib/api/staged.ts)
  { id: "getStaged", method: "get", path: "/api/v1/staged", tag: "History", role: "viewer", summary: "The staged changes: pending revisions, per farm what Apply changes does (also against the kernel now), any savepoint", query: StagedQuerySchema, ok: { status: 200, description: "the pending changes", schema: "StagedView" } },
  {
    id: "applyStaged",
    method: "post",
    path: "/api/v1/staged/apply",
    tag: "History",
    role: "operator",
    summary: "Apply every staged change in one kernel transaction (optionally under a savepoint)",
    description: "Refused (400) when staging is off or an apply waits for its confirmation; refused by the kernel (502), nothing of it lands and the changes stay pending.",
    body: { schema: "StagedApplyBody", required: false },
    kernel: true,
    ok: { status: 200, description: "applied", schema: "Result" },
    example: { savepoint: true },
  },
  { id: "discardStaged", method: "post", path: "/api/v1/staged/discard", tag: "History", role: "operator", summary: "Discard the staged changes: the configuration goes back to what the kernel holds (a new revision); the kernel is not touched", body: { schema: "NoBody", required: false }, ok: { status: 200, description: "discarded", schema: "Result" } },
  { id: "confirmStaged", method: "post", path: "/api/v1/staged/confirm", tag: "History", role: "operator", summary: "Keep an apply made under a savepoint (400 when none waits: confirmed already, or rolled back)", body: { schema: "NoBody", required: false }, ok: { status: 200, description: "kept", schema: "Result" } },
  {
    id: "setStaging",
    method: "put",
    path: "/api/v1/settings/staging",
    tag: "History",
    role: "admin",
    summary: "Turn staged changes on or off for the installation",
    description: "Admin: an installation setting. Turning it off is refused (400) while changes are pending or a savepoint waits.",
    body: { schema: "StagingSetting", required: true },
    ok: { status: 200, description: "set", schema: "Result" },
    example: { enabled: true },
  },

  // ------------------------------------------------------------ audit
  {
    id: "listAudit",
    method: "get",
    path: "/api/v1/audit",
    tag: "Audit",
    role: "admin",
    summary: "The audit log, newest first, filtered",
    description:
      "Reading the audit log needs the admin role: it names every user, their addresses and what each refused request tried. JSON by default; `Accept: application/x-ndjson` or `format=jsonl` gives one entry per line (no paging wrapper: use before with the last id for the next page).",
    query: AuditQuerySchema,
    ok: { status: 200, description: "the entries", schema: "AuditPage", jsonl: true },
  },

  // ------------------------------------------------------------ lab
  {
    id: "runLabTraffic",
    method: "post",
    path: "/api/v1/lab/traffic",
    tag: "Lab",
    role: "operator",
    summary: "Send test connections through the lab and count where they landed",
    body: { schema: "LabTrafficBody", required: true },
    farmInBody: true,
    kernel: true,
    conflict: "the console's target is not the lab, or the farm cannot be tested there (its VIP outside the lab's client network, stopped, no fixed port)",
    ok: { status: 200, description: "the run's tally", schema: "LabRun" },
    example: { farm: "web", connections: 200 },
  },

  // ------------------------------------------------------------ meta
  { id: "getOpenApi", method: "get", path: "/api/v1/openapi.json", tag: "Meta", role: "viewer", summary: "This OpenAPI 3.1 document", ok: { status: 200, description: "OpenAPI 3.1", schema: "OpenApiDocument" } },
];
