/**
 * Which of natfarm's two engines writes a target's rules: the guide's
 * iptables rules (the default) or one nftables table (lib/nftables). Kept
 * free of zod and of either engine, so the CLI can check `--engine` before
 * it loads anything heavy.
 */
export const ENGINES = ["iptables", "nftables"] as const;
export type Engine = (typeof ENGINES)[number];
export const DEFAULT_ENGINE: Engine = "iptables";

export function isEngine(value: unknown): value is Engine {
  return typeof value === "string" && (ENGINES as readonly string[]).includes(value);
}

export function engineMessage(what: string, value: unknown): string {
  return `${what} must be "iptables" or "nftables", got ${JSON.stringify(value)}`;
}

/** A NATFARM_ENGINE that names no engine: bad input wherever it is read (the CLI exits 2). */
export class EngineEnvError extends Error {
  constructor(value: string) {
    super(engineMessage("NATFARM_ENGINE", value));
    this.name = "EngineEnvError";
  }
}

/** NATFARM_ENGINE as the console, the agent's clients and the checker read it: blank means the default, anything else unknown is an error. */
export function engineFromEnv(env: Record<string, string | undefined> = process.env): Engine {
  const v = env.NATFARM_ENGINE?.trim();
  if (!v) return DEFAULT_ENGINE;
  if (!isEngine(v)) throw new EngineEnvError(v);
  return v;
}

/** The other engine: the one an engine switch removes natfarm's rules from. */
export const otherEngine = (e: Engine): Engine => (e === "iptables" ? "nftables" : "iptables");
