import { z } from "zod";
import { DEFAULT_ENGINE, engineMessage, isEngine, type Engine } from "../kernel/engine.ts";
import { NETNS_NAME, type Target } from "../privileged/target.ts";

/**
 * The console's configuration, read once from the environment and validated
 * with zod: a typo in NATFARM_TARGET must stop the start-up with a clear
 * message, not surface later as a failed apply.
 *
 *   NATFARM_TARGET     lab | host | netns:<name> | none
 *                      (default: lab as root, none otherwise)
 *   NATFARM_ENGINE     iptables | nftables: the engine that writes the target's
 *                      rules (default iptables); the console, the agent's
 *                      clients and the checker read it (lib/kernel/engine.ts)
 *   NATFARM_LAB_NAME   lab name, [a-z0-9]{1,12} (default "natfarm")
 *   NATFARM_LAB_BACKENDS  backends the console's lab gets (default 3)
 *   NATFARM_FAULT_FILE test hook: when the file exists, its content ("nat" or
 *                      "mangle") is passed to the applier as injectFault
 */
export type ConsoleTarget = (
  | { kind: "lab"; label: string; labName: string; labBackends: number; target: Target; canApply: true }
  | { kind: "host"; label: string; target: Target; canApply: true }
  | { kind: "netns"; label: string; target: Target; canApply: true }
  | { kind: "none"; label: string; target: null; canApply: false; reason: string }
) & { engine: Engine };

export interface ConsoleEnv {
  target: ConsoleTarget;
  engine: Engine;
  faultFile: string | null;
  host: string;
  port: number;
}

/** Until the console has authentication it listens on loopback only, whatever the environment says. */
export const LISTEN_HOST = "127.0.0.1";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

const TargetValue = z
  .string()
  .trim()
  .refine((v) => v === "lab" || v === "host" || v === "none" || (v.startsWith("netns:") && NETNS_NAME.test(v.slice(6))), {
    error: (iss) => `NATFARM_TARGET must be "lab", "host", "netns:<name>" or "none", got ${JSON.stringify(iss.input)}`,
  });

const EnvSchema = z.object({
  NATFARM_TARGET: TargetValue.optional(),
  NATFARM_ENGINE: z
    .string()
    .trim()
    .refine(isEngine, { error: (iss) => engineMessage("NATFARM_ENGINE", iss.input) })
    .optional(),
  NATFARM_LAB_NAME: z
    .string()
    .trim()
    .regex(/^[a-z0-9]{1,12}$/, { error: "NATFARM_LAB_NAME must be 1-12 characters [a-z0-9]" })
    .default("natfarm"),
  NATFARM_LAB_BACKENDS: z.coerce
    .number({ error: "NATFARM_LAB_BACKENDS must be a number" })
    .int()
    .min(1, { error: "NATFARM_LAB_BACKENDS must be 1..32" })
    .max(32, { error: "NATFARM_LAB_BACKENDS must be 1..32" })
    .default(3),
  NATFARM_FAULT_FILE: z.string().trim().min(1).optional(),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
});

export class ConsoleEnvError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid console environment:\n  ${issues.join("\n  ")}`);
    this.name = "ConsoleEnvError";
  }
}

export function parseConsoleEnv(env: Record<string, string | undefined>, root = isRoot): ConsoleEnv {
  // Blank values count as unset: `NATFARM_TARGET= npm start` means "the default".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new ConsoleEnvError(parsed.error.issues.map((i) => i.message));
  const e = parsed.data;
  // Without root, only an agent can apply for this process: its socket being named means one serves it.
  const value = e.NATFARM_TARGET ?? (root || env.NATFARM_AGENT_SOCKET ? "lab" : "none");
  const engine: Engine = (e.NATFARM_ENGINE as Engine | undefined) ?? DEFAULT_ENGINE;
  let target: ConsoleTarget;
  if (value === "lab") {
    target = {
      kind: "lab",
      label: `lab ${e.NATFARM_LAB_NAME}`,
      labName: e.NATFARM_LAB_NAME,
      labBackends: e.NATFARM_LAB_BACKENDS,
      target: { kind: "netns", name: `${e.NATFARM_LAB_NAME}-lb` },
      canApply: true,
      engine,
    };
  } else if (value === "host") {
    target = { kind: "host", label: "host", target: { kind: "host" }, canApply: true, engine };
  } else if (value === "none") {
    target = {
      kind: "none",
      label: "none",
      target: null,
      canApply: false,
      reason: e.NATFARM_TARGET
        ? "NATFARM_TARGET=none: rules are shown but never applied."
        : "The console runs without root privileges, so rules are shown but never applied. Set NATFARM_TARGET to lab, host or netns:<name> as root to apply.",
      engine,
    };
  } else {
    target = { kind: "netns", label: value, target: { kind: "netns", name: value.slice("netns:".length) }, canApply: true, engine };
  }
  return { target, engine, faultFile: e.NATFARM_FAULT_FILE ?? null, host: LISTEN_HOST, port: e.PORT };
}

let cached: ConsoleEnv | null = null;

/** The process's console configuration (validated on first use, then kept). */
export function consoleEnv(): ConsoleEnv {
  if (!cached) {
    cached = parseConsoleEnv(process.env);
  }
  return cached;
}
