import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { runPrivileged, type Runner } from "../privileged/run.ts";
import type { Target } from "../privileged/target-text.ts";
import { localVipConflicts, readLocalAddresses } from "./local-vips.ts";
import { lockDir, targetLockFile, withTargetLock } from "./lock.ts";
import { HOOK_BUILTIN_KEYS, quickViewFromSave, readSaves } from "./read.ts";

/**
 * What the last whole apply of a farm file wrote, so that applying the same
 * file again (the usual re-apply, a boot restore, a cron job) is told
 * unchanged from one read of the kernel, without checking and rendering
 * 5,000 farms in a cold process (a second of CPU). The stamp is a hint, never
 * trusted on its own: it names the input (a hash of the file's bytes, the
 * engine and the build that rendered it) and a digest of natfarm's rules and
 * hooks as that apply wanted them, and an apply takes the short way only when
 * the kernel's natfarm part, read whole, has exactly that digest. Drift of any
 * kind — a rule deleted or edited, a foreign rule in a natfarm chain, a hook
 * gone — changes the digest, and the apply goes the whole way and mends it.
 *
 * The digest covers what the whole apply compares (`unchangedAgainst`): every
 * NATFARM-* chain of mangle and nat with its rules in order, and natfarm's
 * jumps in the hooked built-in chains, without counters.
 */
export interface Stamp {
  version: 1;
  /** Hash of what was applied: the build, the engine and the file's bytes. */
  input: string;
  /** rulesetDigest of the rules that apply wanted. */
  digest: string;
  /** What the apply warned about (the file's farms and the kernel): shown again by a short re-apply. */
  warnings: string[];
  /** VIPs of live farms that must not be the target's own addresses (checked again each time: addresses change). */
  vips: string[];
}

/** Chain key → rule specs, and hook key → natfarm's specs there: the canonical text hashed. */
export function rulesetDigest(chains: Iterable<readonly [string, readonly string[]]>, hooks: ReadonlyMap<string, readonly string[]>): string {
  const h = createHash("sha256");
  const sorted = [...chains].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [key, specs] of sorted) {
    h.update(`${key}\n`);
    h.update(specs.join("\n"));
    h.update("\n\n");
  }
  for (const key of HOOK_BUILTIN_KEYS) {
    h.update(`hook ${key}\n`);
    h.update([...(hooks.get(key) ?? [])].sort().join("\n"));
    h.update("\n\n");
  }
  return h.digest("hex");
}

export function stampFile(target: Target): string {
  return targetLockFile(target).replace(/\.lock$/, ".stamp");
}

/**
 * The stamp as this user wrote it, or null. The lock directory is
 * world-writable (every user's lock lives there), so a stamp is read only
 * when it is a plain file of this user's that nobody else may write.
 */
export function readStamp(target: Target): Stamp | null {
  const file = stampFile(target);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0 || st.size > 1 << 20) return null;
    const v = JSON.parse(fs.readFileSync(fd, "utf8")) as Partial<Stamp>;
    if (v.version !== 1 || typeof v.input !== "string" || typeof v.digest !== "string") return null;
    const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : []);
    return { version: 1, input: v.input, digest: v.digest, warnings: strings(v.warnings), vips: strings(v.vips) };
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Written under a fresh name and renamed over the old one: a reader sees the old stamp or the new one, never a part. */
export function writeStamp(target: Target, stamp: Omit<Stamp, "version">): void {
  const file = stampFile(target);
  fs.mkdirSync(lockDir(), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}`);
  fs.writeFileSync(tmp, `${JSON.stringify({ version: 1, ...stamp })}\n`, { mode: 0o600, flag: "wx" });
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function forgetStamp(target: Target): void {
  fs.rmSync(stampFile(target), { force: true });
}

const missingProgram = (e: unknown) => (e as NodeJS.ErrnoException)?.code === "ENOENT";

/**
 * Whether the nftables engine's table is certainly absent (nft missing, or it
 * says there is no such table). Anything else — the table, or an answer not
 * understood — sends the apply the whole way, which reads it properly.
 */
async function noNftTable(target: Target, timeoutMs: number, run: Runner): Promise<boolean> {
  try {
    const r = await run("nft", ["list", "table", "ip", "natfarm"], { target, timeoutMs, allowFailure: true });
    return r.exitCode !== 0 && /No such file or directory/.test(r.stderr);
  } catch (e) {
    if (missingProgram(e)) return true;
    throw e;
  }
}

/**
 * Whether the target holds exactly what the stamp's apply wrote for `input`,
 * read under the target's lock: the stamp names this input, no apply was
 * interrupted since (no journal), the kernel's natfarm part has the stamp's
 * digest, the nftables engine holds no natfarm table (a whole apply would
 * remove it), and no live farm's VIP has become one of the target's own
 * addresses. Returns the stamp's warnings when so, null when the whole apply
 * must run (which then finds, and writes, whatever differs).
 */
export async function unchangedByStamp(target: Target, input: string, timeoutMs = 60_000, run: Runner = runPrivileged): Promise<{ warnings: string[] } | null> {
  const stamp = readStamp(target);
  if (!stamp || stamp.input !== input) return null;
  return withTargetLock(target, timeoutMs, async (lock) => {
    if (fs.existsSync(lock.file.replace(/\.lock$/, ".journal"))) return null;
    const [saves, noNft, addresses] = await Promise.all([
      readSaves(target, timeoutMs, run),
      noNftTable(target, timeoutMs, run),
      stamp.vips.length ? readLocalAddresses(target, timeoutMs, run) : [],
    ]);
    if (!noNft) return null;
    if (localVipConflicts(addresses, stamp.vips).length) return null;
    const quick = quickViewFromSave(saves);
    if (rulesetDigest(quick.owned, quick.hooks) !== stamp.digest) return null;
    return { warnings: stamp.warnings };
  });
}
