/**
 * Targets as text (`host`, `netns:<name>`), without zod: what the CLI needs to
 * read its options before it loads anything heavy. lib/privileged/target.ts
 * builds the shared schema on this.
 */
export type Target = { kind: "host" } | { kind: "netns"; name: string };

export const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function readTarget(text: string): { ok: true; target: Target } | { ok: false; message: string } {
  const value = text.trim();
  if (value === "host") return { ok: true, target: { kind: "host" } };
  const m = /^netns:(.*)$/.exec(value);
  if (m && NETNS_NAME.test(m[1]!)) return { ok: true, target: { kind: "netns", name: m[1]! } };
  return { ok: false, message: `target must be "host" or "netns:<name>" (name: letters, digits, . _ -), got "${value}"` };
}

export function formatTarget(target: Target): string {
  return target.kind === "host" ? "host" : `netns:${target.name}`;
}
