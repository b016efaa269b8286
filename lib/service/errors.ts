import type { z } from "zod";
import { FarmValidationError, type ApplyError } from "../applier/errors.ts";
import { uniqueViolation } from "../db/errors.ts";
import { fieldErrors, formatIssues } from "../farms/errors.ts";
import type { AgentUnavailableError } from "../kernel/index.ts";
import { ConcurrentChangeError } from "./conflict.ts";
import type { FieldErrors, MutationResult } from "./result.ts";

/**
 * The one mapper between what goes wrong and what the operator reads. In:
 * zod issues, the applier's refusals (FarmValidationError, ApplyError) and
 * an unreachable agent become the service's MutationResult. Out: a result
 * becomes a form's state (server actions), an API answer (route handlers) or
 * an exit status (CLI). Every sentence the operator sees for these cases is
 * written here once, so the console, the API and the CLI say the same thing.
 */

export const NOT_SAVED = "The farm was not saved: fix the highlighted fields.";

/** Why nothing happened when the agent is down; `what` says what did not happen. */
export function agentDown(what = "nothing was changed"): string {
  return `The natfarm agent is not running; ${what}. Start it (npm start runs it) and try again.`;
}

// ---------------------------------------------------------------- in: to results

/** The set check names the other farm by its index in the list; the operator knows it by name. */
function operatorWords(message: string): string {
  const dup = /^farm name "(.+)" is already used by farm \d+$/.exec(message);
  return dup ? `a farm named "${dup[1]}" already exists` : message;
}

/**
 * Issues of a farm set in which `focus` is the index of the farm being
 * changed: its own issues keyed by its field paths (`vip`,
 * `backends.1.weight`), those of other farms under `_form`, in full sentences
 * that name the farm.
 */
export function setFieldErrors(error: z.ZodError, list: unknown, focus: number): FieldErrors {
  const out: FieldErrors = {};
  const described = formatIssues(error, list);
  error.issues.forEach((issue, i) => {
    const key = issue.path[0] === focus && issue.path.length > 1 ? issue.path.slice(1).map(String).join(".") : "_form";
    (out[key] ??= []).push(key === "_form" ? described[i]! : operatorWords(issue.message));
  });
  return out;
}

/** Issues of one object (a farm, a backend, a form's fields), keyed by dotted path. */
export function objectFieldErrors(error: z.ZodError): FieldErrors {
  return fieldErrors(error);
}

/** The applier's refusal of a VIP on the target's own address, on the vip field (without the farm's name: the form is the farm's). */
export function localVipErrors(e: FarmValidationError): FieldErrors {
  return { vip: e.issues.map((m) => m.replace(/^farm "[^"]*" › vip: /, "")) };
}

export function invalid(errors: FieldErrors, message = NOT_SAVED): MutationResult {
  return { ok: false, reason: "invalid", message, errors };
}

/** Refused as a whole (no field to blame): the message also under `_form`, which every form shows. */
export function refused(message: string): MutationResult {
  return { ok: false, reason: "invalid", message, errors: { _form: [message] } };
}

export function notFound(name: string): MutationResult {
  return { ok: false, reason: "not-found", message: `There is no farm named "${name}".` };
}

export function unavailable(opts: { farm?: string; saved?: string } = {}): MutationResult {
  const message = opts.saved ? `${opts.saved} but not applied: the natfarm agent is not running. The change is pending; apply it once the agent is back.` : agentDown();
  return { ok: false, reason: "unavailable", farm: opts.farm, saved: Boolean(opts.saved), message };
}

/** A whole farm set refused (an import): sentences naming farm, backend and field, as the CLI prints them (exit 2). */
export function invalidFarms(error: z.ZodError, input: unknown): FarmValidationError {
  return new FarmValidationError(formatIssues(error, input));
}

/** An import that kept meeting other writers: what they took, and that nothing was imported (CLI exit 1). */
export function importConflict(e: unknown, taken: string[]): ConcurrentChangeError {
  const what = (uniqueViolation(e) ?? []).includes("mark")
    ? "a backend mark was taken by another process meanwhile"
    : taken.length
      ? `farm ${taken.slice(0, 5).join(", ")}${taken.length > 5 ? ` (and ${taken.length - 5} more)` : ""} ${taken.length === 1 ? "was" : "were"} written by another process meanwhile`
      : "another process changed the farms meanwhile";
  return new ConcurrentChangeError(`${what}; nothing was imported: run the import again`);
}

/** The service's own writes that kept meeting other writers: nothing was saved. */
export function writeConflict(): MutationResult {
  return refused("Another process kept changing the farms meanwhile: nothing was saved. Try again.");
}

/**
 * `instanceof` by the name the classes give their errors: Next bundles route
 * handlers and pages apart, and the console's service (one per process, on
 * globalThis) throws its copy's classes to code holding another copy.
 */
function isNamed<T extends Error>(e: unknown, name: string): e is T {
  return e instanceof Error && e.name === name;
}

/** What a failed kernel call means for the change that made it. */
export type KernelFailure =
  /** The request never reached the kernel: nothing there changed. */
  | { kind: "unreachable"; message: string }
  /** The applier's own validation refused the farms: nothing there changed. */
  | { kind: "invalid"; message: string; issues: string[]; error: FarmValidationError }
  /** The kernel refused or the call failed. `inDoubt`: what the kernel holds now is not known (a rollback failed, or the agent went away mid-request). */
  | { kind: "failed"; message: string; iptables: string; inDoubt: boolean };

/**
 * Whether the agent got the request at all. A socket that is missing, refuses
 * the connection or may not be opened means it did not; a connection lost
 * once the request was sent (the agent restarted mid-apply), or no answer,
 * leaves it unknown.
 */
function neverDelivered(e: AgentUnavailableError): boolean {
  return !e.delivered;
}

export function kernelFailure(e: unknown): KernelFailure {
  if (isAgentDown(e)) {
    if (neverDelivered(e)) return { kind: "unreachable", message: e.message };
    const message = `the natfarm agent went away during the change (${e.cause}): whether the kernel holds it is not known; re-apply once the agent is back`;
    return { kind: "failed", message, iptables: message, inDoubt: true };
  }
  if (isNamed<FarmValidationError>(e, "FarmValidationError")) return { kind: "invalid", message: e.message, issues: e.issues, error: e };
  if (isNamed<ApplyError>(e, "ApplyError")) return { kind: "failed", message: e.message, iptables: e.iptablesMessage.trim(), inDoubt: e.rolledBack === "rollback-failed" };
  const message = e instanceof Error ? e.message : String(e);
  return { kind: "failed", message, iptables: message, inDoubt: false };
}

/** True when `e` says the agent is down: reads show the banner, not an error of their own. */
export function isAgentDown(e: unknown): e is AgentUnavailableError {
  return isNamed<AgentUnavailableError>(e, "AgentUnavailableError");
}

// ---------------------------------------------------------------- out: forms

/**
 * What a server action hands back to useActionState. `stamp` changes on each
 * submission so the client can toast once per result; `values` puts a
 * refused form back as the operator typed it (React resets forms after an
 * action).
 */
export interface FormState {
  status: "idle" | "ok" | "invalid" | "failed";
  message: string;
  errors: FieldErrors;
  values?: Record<string, string>;
  /** Accepted, but worth the operator's attention (also appended to `message`, which every toast shows). */
  warnings?: string[];
  /** The iptables text of a refused apply, shown verbatim. */
  iptables?: string;
  farm?: string;
  /** The agent could not be reached (the page's banner says so too). */
  agentUnavailable?: boolean;
  stamp: number;
}

/** How the submitting form names its fields, for putting the service's errors where it shows them. */
export interface FormShape {
  /** The form as submitted, put back on a refusal. */
  values?: Record<string, string>;
  /** The create form numbers its backend rows: backend k came from row rowOf[k]. */
  rowOf?: number[];
  /** A backend form: its inputs. The farm's other errors go to `_form`, named by field. */
  backendFields?: ReadonlySet<string>;
  /** A farm form without backend inputs: a backend's errors go to `_form`, named by this label. */
  backendLabel?: (index: number) => string;
}

/** Moves `backends.<k>.field` keys to the form rows the backends came from. */
export function errorsToRows(errors: FieldErrors, rowOf: number[]): FieldErrors {
  const out: FieldErrors = {};
  for (const [key, messages] of Object.entries(errors)) {
    const m = /^backends\.(\d+)(\..*)?$/.exec(key);
    const mapped = m && rowOf[Number(m[1])] !== undefined ? `backends.${rowOf[Number(m[1])]}${m[2] ?? ""}` : key;
    (out[mapped] ??= []).push(...messages);
  }
  return out;
}

function keyedFor(errors: FieldErrors, shape: FormShape): FieldErrors {
  if (shape.rowOf) return errorsToRows(errors, shape.rowOf);
  const out: FieldErrors = {};
  const push = (key: string, messages: string[]) => (out[key] ??= []).push(...messages);
  for (const [key, messages] of Object.entries(errors)) {
    if (shape.backendFields) {
      // The service reports on the whole farm: `backends.<k>.weight` → `weight`.
      const sub = /^backends\.\d+\.(\w+)$/.exec(key)?.[1];
      if (sub && shape.backendFields.has(sub)) push(sub, messages);
      else push("_form", key === "_form" ? messages : messages.map((m) => `${sub ?? key}: ${m}`));
    } else if (shape.backendLabel) {
      const m = /^backends\.(\d+)\.?(.*)$/.exec(key);
      if (!m) push(key, messages);
      else push("_form", messages.map((msg) => `${shape.backendLabel!(Number(m[1]))}${m[2] ? ` (${m[2]})` : ""}: ${msg}`));
    } else push(key, messages);
  }
  return out;
}

/**
 * A service result as the form's state. Warnings ride along in `warnings`
 * and at the end of the message, so every toast and form that shows the
 * message shows them. The agent down with nothing saved is a refusal like
 * bad input ("invalid": the form keeps what was typed, nothing changed); a
 * change saved before the agent went away is "failed", as a refused apply.
 */
export function toFormState(r: MutationResult, shape: FormShape = {}): FormState {
  const stamp = Date.now();
  if (r.ok) {
    const warnings = r.warnings ?? [];
    const message = warnings.length ? `${r.message} Warning: ${warnings.join(" Warning: ")}` : r.message;
    return { status: "ok", message, errors: {}, farm: r.farm, stamp, ...(warnings.length ? { warnings } : {}) };
  }
  switch (r.reason) {
    case "apply-failed":
      return { status: "failed", message: r.message, errors: {}, iptables: r.iptables, farm: r.farm, stamp };
    case "unavailable":
      return r.saved
        ? { status: "failed", message: r.message, errors: {}, farm: r.farm, agentUnavailable: true, stamp }
        : { status: "invalid", message: r.message, errors: { _form: [r.message] }, values: shape.values, agentUnavailable: true, stamp };
    case "not-found":
      return { status: "invalid", message: r.message, errors: { _form: [r.message] }, values: shape.values, stamp };
    case "invalid":
      return { status: "invalid", message: r.message, errors: keyedFor(r.errors, shape), values: shape.values, stamp };
  }
}

/**
 * A form refused before the service was asked (a field missing or
 * malformed, a value the schema rejects on its own): nothing was changed.
 * `alsoForm`: the messages go to `_form` too, for forms with no input for
 * the field (the farm or mark a button carries).
 */
export function formRefusal(errors: FieldErrors, message: string, opts: { values?: Record<string, string>; rowOf?: number[]; alsoForm?: boolean } = {}): FormState {
  const keyed = opts.rowOf ? errorsToRows(errors, opts.rowOf) : { ...errors };
  if (opts.alsoForm) keyed._form = [message];
  return { status: "invalid", message, errors: keyed, values: opts.values, stamp: Date.now() };
}

/** A failure outside the farm lifecycle (a lab run) as a form's state. */
export function failureState(e: unknown, what: string): FormState {
  const f = kernelFailure(e);
  if (f.kind === "unreachable") return { status: "failed", message: agentDown(`nothing was ${what}`), errors: {}, agentUnavailable: true, stamp: Date.now() };
  const message = f.kind === "invalid" ? f.issues.join("; ") : f.message;
  return { status: "failed", message, errors: {}, stamp: Date.now() };
}

// ---------------------------------------------------------------- out: the API

export interface ApiError {
  status: number;
  body: { error: string; agentUnavailable?: true };
}

/** A failed read behind a route handler: 503 while the agent is down (the page shows its banner), 502 for anything else the kernel side did. */
export function apiError(e: unknown): ApiError {
  const message = e instanceof Error ? e.message : String(e);
  if (isAgentDown(e)) return { status: 503, body: { error: message, agentUnavailable: true } };
  return { status: 502, body: { error: message } };
}

// ---------------------------------------------------------------- out: the CLI

/** The CLI's exit status for a result: 0 done, 2 refused input (nothing written), 1 the kernel refused or could not be reached. */
export function exitCodeOf(r: MutationResult): 0 | 1 | 2 {
  if (r.ok) return 0;
  return r.reason === "invalid" || r.reason === "not-found" ? 2 : 1;
}
