/**
 * Login and session settings, from the environment (durations as `90s`,
 * `30m`, `12h`, `1d` or plain seconds):
 *
 *   NATFARM_SESSION_IDLE                 idle timeout, default 30m
 *   NATFARM_SESSION_LIFETIME             absolute lifetime, default 12h
 *   NATFARM_LOGIN_MAX_FAILURES           failed logins per user name in the window before a lock, default 5
 *   NATFARM_LOGIN_ADDRESS_MAX_FAILURES   the same per client address, default 5
 *   NATFARM_LOGIN_WINDOW                 the window the failures are counted in, default 15m
 *   NATFARM_LOGIN_LOCK                   how long a lock lasts, default 15m
 */
export interface AuthConfig {
  idleMs: number;
  lifetimeMs: number;
  maxFailures: number;
  addressMaxFailures: number;
  windowMs: number;
  lockMs: number;
}

export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthConfigError";
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(name: string, raw: string | undefined, fallbackMs: number): number {
  if (raw === undefined || raw.trim() === "") return fallbackMs;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(raw);
  if (!m) throw new AuthConfigError(`${name} must be a duration such as 90s, 30m or 12h, got ${JSON.stringify(raw)}`);
  const ms = Number(m[1]) * UNITS[m[2] ?? "s"]!;
  if (!(ms >= 1000)) throw new AuthConfigError(`${name} must be at least 1s, got ${JSON.stringify(raw)}`);
  return ms;
}

function parseCount(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new AuthConfigError(`${name} must be a whole number from 1, got ${JSON.stringify(raw)}`);
  return n;
}

export function authConfig(env: Record<string, string | undefined> = process.env): AuthConfig {
  const maxFailures = parseCount("NATFARM_LOGIN_MAX_FAILURES", env.NATFARM_LOGIN_MAX_FAILURES, 5);
  return {
    idleMs: parseDuration("NATFARM_SESSION_IDLE", env.NATFARM_SESSION_IDLE, 30 * 60_000),
    lifetimeMs: parseDuration("NATFARM_SESSION_LIFETIME", env.NATFARM_SESSION_LIFETIME, 12 * 3_600_000),
    maxFailures,
    addressMaxFailures: parseCount("NATFARM_LOGIN_ADDRESS_MAX_FAILURES", env.NATFARM_LOGIN_ADDRESS_MAX_FAILURES, maxFailures),
    windowMs: parseDuration("NATFARM_LOGIN_WINDOW", env.NATFARM_LOGIN_WINDOW, 15 * 60_000),
    lockMs: parseDuration("NATFARM_LOGIN_LOCK", env.NATFARM_LOGIN_LOCK, 15 * 60_000),
  };
}
