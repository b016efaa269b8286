import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { databaseEnv } from "../db/env.ts";

/**
 * Encryption of the TOTP secrets at rest (AES-256-GCM). Unlike a password, a
 * TOTP secret must be read back to check a code, so it cannot be hashed; it
 * is encrypted with a key kept outside the database, so a copy of the
 * database (a backup, an export, a leaked file) does not hand out second
 * factors. The key is a file, NATFARM_TOTP_KEY_FILE, default `totp.key`
 * beside the database, made at the first enrolment (32 random bytes, mode
 * 0600, by the web server's user, who owns that directory). Losing the key
 * disables every second factor's check: `natfarm user totp-reset NAME`.
 *
 * The user's id is bound in as associated data: a ciphertext moved to
 * another user's row does not decrypt.
 */
const VERSION = "v1";

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretBoxError";
  }
}

export function keyFile(env: Record<string, string | undefined> = process.env): string {
  const configured = env.NATFARM_TOTP_KEY_FILE?.trim();
  if (configured) return path.resolve(configured);
  return path.join(databaseEnv().dataDir, "totp.key");
}

function readKey(create: boolean): Buffer {
  const file = keyFile();
  try {
    const key = fs.readFileSync(file);
    if (key.length !== 32) throw new SecretBoxError(`${file} must hold 32 bytes (the TOTP encryption key), it holds ${key.length}`);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !create) {
      if (e instanceof SecretBoxError) throw e;
      throw new SecretBoxError(`the TOTP encryption key ${file} cannot be read: ${(e as Error).message}`);
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(32);
  try {
    // wx: two processes enrolling at once must not each write their own key.
    fs.writeFileSync(file, key, { mode: 0o600, flag: "wx" });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return readKey(false);
    throw new SecretBoxError(`the TOTP encryption key ${file} cannot be written: ${(e as Error).message}`);
  }
}

export function seal(plain: string, userId: number): string {
  const key = readKey(true);
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(`natfarm-totp:${userId}`));
  const body = Buffer.concat([c.update(plain, "utf8"), c.final()]);
  return [VERSION, iv.toString("base64url"), body.toString("base64url"), c.getAuthTag().toString("base64url")].join(".");
}

export function open(sealed: string, userId: number): string {
  const [version, iv, body, tag] = sealed.split(".");
  if (version !== VERSION || !iv || !body || !tag) throw new SecretBoxError("the stored TOTP secret is not in a known format");
  const d = createDecipheriv("aes-256-gcm", readKey(false), Buffer.from(iv, "base64url"));
  d.setAAD(Buffer.from(`natfarm-totp:${userId}`));
  d.setAuthTag(Buffer.from(tag, "base64url"));
  try {
    return Buffer.concat([d.update(Buffer.from(body, "base64url")), d.final()]).toString("utf8");
  } catch {
    throw new SecretBoxError(`the stored TOTP secret does not decrypt with ${keyFile()} (another key?): reset the user's second factor with natfarm user totp-reset`);
  }
}
