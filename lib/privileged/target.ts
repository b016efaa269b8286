import { z } from "zod";
import { readTarget, type Target } from "./target-text.ts";

/**
 * Where natfarm's rules live: this machine's own netfilter, or a network
 * namespace (the lab, or a test bed). Parsed from strings such as `host` and
 * `netns:lab1-lb` at every boundary (CLI, console, applier).
 */
export { formatTarget, NETNS_NAME, type Target } from "./target-text.ts";

export const TargetSchema = z
  .string()
  .transform((value, ctx): Target => {
    const r = readTarget(value);
    if (r.ok) return r.target;
    ctx.addIssue({ code: "custom", message: r.message });
    return z.NEVER;
  });

export function parseTarget(value: string): Target {
  return TargetSchema.parse(value);
}

