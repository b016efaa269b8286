import type { z } from "zod";

/**
 * Turns zod issues into sentences an operator can act on: each names the
 * farm (by name when it has one), the backend (by index and address) and the
 * field, e.g. `farm "app" › backend 2 (192.168.1.11) › weight: ...`. Backends
 * are numbered from 1, as the console numbers them (paths and the rules'
 * FARM_<farm>_<n>_ comments count from 0).
 */
export function describePath(path: readonly PropertyKey[], input: unknown): string {
  const parts: string[] = [];
  let node: unknown = input;
  let i = 0;
  if (path[0] === "farms") {
    node = (node as { farms?: unknown } | undefined)?.farms;
    i = 1;
  }
  const farmIndex = path[i];
  if (typeof farmIndex === "number" && Array.isArray(node)) {
    const farm = node[farmIndex] as { name?: unknown } | undefined;
    parts.push(typeof farm?.name === "string" && farm.name ? `farm "${farm.name}"` : `farm #${farmIndex}`);
    node = farm;
    i++;
  }
  for (; i < path.length; i++) {
    const key = path[i];
    if (key === "backends" && typeof path[i + 1] === "number") {
      const idx = path[i + 1] as number;
      const b = (node as { backends?: { ip?: unknown }[] } | undefined)?.backends?.[idx];
      parts.push(typeof b?.ip === "string" ? `backend ${idx + 1} (${b.ip})` : `backend ${idx + 1}`);
      node = b;
      i++;
    } else {
      parts.push(String(key));
      node = (node as Record<PropertyKey, unknown> | undefined)?.[key as string];
    }
  }
  return parts.join(" › ");
}

export function formatIssues(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((issue) => {
    const where = describePath(issue.path, input);
    return where ? `${where}: ${issue.message}` : issue.message;
  });
}

/** Field errors keyed by dotted path, for forms (`backends.1.weight`). */
export function fieldErrors(error: z.ZodError): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const key = issue.path.map(String).join(".") || "_form";
    (out[key] ??= []).push(issue.message);
  }
  return out;
}
