import type { FarmInput } from "../farms/schema.ts";
import type { FarmSettingsPatch } from "../service/farm-service.ts";

/**
 * FormData → the shared schema's input. Field names are the schema's paths
 * (`vip`, `backends.0.weight`), so the schema's errors come back keyed by the
 * very input that caused them. Nothing is validated here: a value that is not
 * a number is passed on as text for the schema to reject with its own words.
 */
type BackendInput = NonNullable<FarmInput["backends"]>[number];

function text(form: FormData, key: string): string | undefined {
  const v = form.get(key);
  return typeof v === "string" ? v : undefined;
}

function numberish(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  const t = value.trim();
  if (t === "") return undefined;
  return /^-?\d+$/.test(t) ? Number(t) : t;
}

export function backendFromForm(form: FormData, prefix = ""): BackendInput {
  const port = numberish(text(form, `${prefix}port`));
  const weight = numberish(text(form, `${prefix}weight`));
  const state = text(form, `${prefix}state`);
  const priority = numberish(text(form, `${prefix}priority`));
  return {
    ip: (text(form, `${prefix}ip`) ?? "") as string,
    port: (port ?? null) as number | null,
    ...(weight !== undefined ? { weight: weight as number } : {}),
    ...(priority !== undefined ? { priority: priority as number } : {}),
    ...(state ? { state: state as BackendInput["state"] } : {}),
  };
}

/**
 * Backend rows are numbered; a row left completely empty is not a backend.
 * `rowOf[k]` is the form row of backend k, for putting errors back on it.
 */
export function farmFromForm(form: FormData): { farm: FarmInput; rowOf: number[] } {
  const rows = new Set<number>();
  for (const key of form.keys()) {
    const m = /^backends\.(\d+)\./.exec(key);
    if (m) rows.add(Number(m[1]));
  }
  const backends: BackendInput[] = [];
  const rowOf: number[] = [];
  for (const i of [...rows].sort((a, b) => a - b)) {
    const prefix = `backends.${i}.`;
    const filled = ["ip", "port", "weight"].some((f) => (text(form, prefix + f) ?? "").trim() !== "");
    if (filled) {
      backends.push(backendFromForm(form, prefix));
      rowOf.push(i);
    }
  }
  const farm: FarmInput = {
    name: text(form, "name") ?? "",
    vip: text(form, "vip") ?? "",
    ports: text(form, "ports") ?? "",
    protocol: (text(form, "protocol") ?? "") as FarmInput["protocol"],
    mode: (text(form, "mode") ?? "") as FarmInput["mode"],
    backends,
  };
  return { farm, rowOf };
}

/** The values to put back into a form after a refused submission (React resets forms after an action). */
export function formValues(form: FormData): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of form.entries()) if (typeof v === "string" && !k.startsWith("$")) out[k] = v;
  return out;
}

/**
 * The farm Settings form → the service's patch. Field names are the schema's
 * paths (`persistenceTtl`, `healthcheck.interval`). The health check goes only
 * when its "enabled" box is ticked; path and expected status only with http
 * (the form hides them for other types). Blank numbers fall back to the
 * schema's defaults; text that is not a number reaches the schema as text.
 */
export function settingsFromForm(form: FormData): FarmSettingsPatch {
  const patch: FarmSettingsPatch = {
    vip: text(form, "vip") ?? "",
    ports: text(form, "ports") ?? "",
    protocol: (text(form, "protocol") ?? "") as FarmInput["protocol"],
    scheduler: (text(form, "scheduler") ?? "") as FarmInput["scheduler"],
    persistence: (text(form, "persistence") ?? "") as FarmInput["persistence"],
  };
  const ttl = numberish(text(form, "persistenceTtl"));
  if (ttl !== undefined) patch.persistenceTtl = ttl as number;
  if (!text(form, "healthcheck.enabled")) {
    patch.healthcheck = null;
    return patch;
  }
  const type = text(form, "healthcheck.type") ?? "tcp";
  const check: Record<string, unknown> = { type };
  for (const key of ["interval", "timeout", "failures", "passes", "port"] as const) {
    const v = numberish(text(form, `healthcheck.${key}`));
    if (v !== undefined) check[key] = v;
  }
  if (type === "http") {
    const path = (text(form, "healthcheck.path") ?? "").trim();
    if (path) check.path = path;
    const status = numberish(text(form, "healthcheck.expectStatus"));
    if (status !== undefined) check.expectStatus = status;
  }
  patch.healthcheck = check as NonNullable<FarmInput["healthcheck"]>;
  return patch;
}
