import { z } from "zod";

/**
 * Where natfarm's rules live: this machine's own netfilter, or a network
 * namespace (the lab, or a test bed). Parsed from strings such as `host` and
 * `netns:lab1-lb` at every boundary (CLI, console, applier).
 */
export type Target = { kind: "host" } | { kind: "netns"; name: string };

export const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const TargetSchema = z
  .string()
  .trim()
  .transform((value, ctx): Target => {
    if (value === "host") return { kind: "host" };
    const m = /^netns:(.*)$/.exec(value);
    if (m && NETNS_NAME.test(m[1]!)) return { kind: "netns", name: m[1]! };
    ctx.addIssue({
      code: "custom",
      message: `target must be "host" or "netns:<name>" (name: letters, digits, . _ -), got "${value}"`,
    });
    return z.NEVER;
  });

export function parseTarget(value: string): Target {
  return TargetSchema.parse(value);
}

export function formatTarget(target: Target): string {
  return target.kind === "host" ? "host" : `netns:${target.name}`;
}
