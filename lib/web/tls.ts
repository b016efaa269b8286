import { randomBytes, X509Certificate, createPrivateKey } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { acquireFlock } from "../sys/flock.ts";
import { canonicalHost, isIP } from "./hosts.ts";
import type { WebConfig } from "./config.ts";

/**
 * The console's TLS certificate.
 *
 * With NATFARM_TLS_CERT / NATFARM_TLS_KEY the operator's certificate is used
 * as it is (checked: it parses, the key is its key, it has not expired).
 * Otherwise a self-signed certificate is made at the first start, offline
 * (the `selfsigned` package: WebCrypto, no openssl), in the TLS directory:
 *
 *   <dir>/            mode 0700
 *   <dir>/key.pem     mode 0600, the EC P-256 private key
 *   <dir>/cert.pem    mode 0644, valid 825 days, SANs: localhost, 127.0.0.1,
 *                     ::1, the host name, the listening address (every
 *                     interface address when listening on 0.0.0.0 / ::),
 *                     NATFARM_ALLOWED_HOSTS
 *
 * all owned by `owner` when given (the user the web server runs as: the
 * supervisor makes the files as root and hands them over). It is kept across
 * starts (its fingerprint stays what the operator accepted) and made again
 * only when it is unreadable, not natfarm's pair, expires within 30 days, or
 * lacks a name it must hold. One writer at a time (flock on <dir>/.lock);
 * files are written aside and renamed into place.
 */

export const SELF_SIGNED_CN = "natfarm self-signed";
const VALID_DAYS = 825;
const RENEW_BEFORE_MS = 30 * 86_400_000;

export interface Owner {
  uid: number;
  gid: number;
}

export interface LoadedCertificate {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** SHA-256 of the certificate, colon-separated upper-case hex (what browsers show). */
  fingerprint256: string;
  source: "self-signed" | "configured";
  /** Why it was made at this start, when it was. */
  generated: string | null;
  names: string[];
  notAfter: Date;
}

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CertificateError";
  }
}

/** The certificate's DNS names and IP addresses, canonical. */
export function certificateSans(x: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (x.subjectAltName ?? "").split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    const c = m ? canonicalHost(m[2]!) : null;
    if (c) out.push(c);
  }
  return out;
}

const fingerprintOf = (x: X509Certificate) => x.fingerprint256;

function keyMatches(x: X509Certificate, keyPem: string): boolean {
  try {
    return x.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Why an existing self-signed pair cannot be kept, or null when it can. */
export function staleReason(certPem: string, keyPem: string, required: readonly string[], now: Date): string | null {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch {
    return "the certificate does not parse";
  }
  if (!x.subject.includes(`CN=${SELF_SIGNED_CN}`) || x.subject !== x.issuer) return "not-ours";
  if (!keyMatches(x, keyPem)) return "the key is not the certificate's";
  if (new Date(x.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return `it expires on ${new Date(x.validTo).toISOString().slice(0, 10)}`;
  if (new Date(x.validFrom).getTime() > now.getTime() + 86_400_000) return "it is not valid yet (clock changed?)";
  const have = new Set(certificateSans(x));
  const missing = required.filter((n) => !have.has(n));
  if (missing.length) return `it does not name ${missing.join(", ")}`;
  return null;
}

export async function generateSelfSigned(names: readonly string[], hostname: string, now = new Date()): Promise<{ cert: string; key: string }> {
  const { generate } = await import("selfsigned");
  const notBeforeDate = new Date(now.getTime() - 5 * 60_000); // a little clock skew between machines
  const r = await generate([{ name: "commonName", value: `${SELF_SIGNED_CN} ${hostname}`.slice(0, 64) }, { name: "organizationName", value: "natfarm" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate: new Date(now.getTime() + VALID_DAYS * 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  return { cert: r.cert, key: r.private };
}

function readIfThere(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CertificateError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function ownAndMode(file: string, mode: number, owner: Owner | undefined): void {
  const st = fs.statSync(file);
  if ((st.mode & 0o7777) !== mode) fs.chmodSync(file, mode);
  if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) fs.chownSync(file, owner.uid, owner.gid);
}

function writeAtomic(file: string, content: string, mode: number, owner: Owner | undefined): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.writeSync(fd, content);
    fs.fchmodSync(fd, mode); // the umask filtered the mode of open()
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export interface EnsureOptions {
  dir: string;
  /** Names the certificate must hold. */
  required: readonly string[];
  /** Names it also gets when it is made. */
  extra?: readonly string[];
  hostname: string;
  owner?: Owner;
  now?: Date;
}

/** The self-signed pair in `dir`: kept when good, made (again) when not. */
export async function ensureSelfSigned(o: EnsureOptions): Promise<LoadedCertificate> {
  const now = o.now ?? new Date();
  const certFile = path.join(o.dir, "cert.pem");
  const keyFile = path.join(o.dir, "key.pem");
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  ownAndMode(o.dir, 0o700, o.owner);
  const lock = await acquireFlock(path.join(o.dir, ".lock"), { timeoutMs: 30_000, what: "natfarm web: TLS certificate" });
  try {
    try {
      ownAndMode(lock.file, 0o600, o.owner);
    } catch {
      /* another user's lock file: it still locks */
    }
    const cert = readIfThere(certFile);
    const key = readIfThere(keyFile);
    let reason: string | null = cert === null || key === null ? "there was none" : staleReason(cert, key, o.required, now);
    if (reason === "not-ours") {
      throw new CertificateError(
        `${certFile} is not natfarm's self-signed certificate: natfarm does not overwrite it. ` +
          `To serve it, set NATFARM_TLS_CERT=${certFile} and NATFARM_TLS_KEY=${keyFile}; to get a new self-signed one, remove both files.`,
      );
    }
    if (reason === null) {
      // Kept: only its modes and owner are made right.
      ownAndMode(keyFile, 0o600, o.owner);
      ownAndMode(certFile, 0o644, o.owner);
      return describe(cert!, key!, certFile, keyFile, "self-signed", null);
    }
    const names = [...o.required, ...(o.extra ?? []).filter((n) => !o.required.includes(n))];
    const made = await generateSelfSigned(names, o.hostname, now);
    writeAtomic(keyFile, made.key, 0o600, o.owner);
    writeAtomic(certFile, made.cert, 0o644, o.owner);
    return describe(made.cert, made.key, certFile, keyFile, "self-signed", reason);
  } finally {
    lock.release();
  }
}

function describe(cert: string, key: string, certFile: string, keyFile: string, source: LoadedCertificate["source"], generated: string | null): LoadedCertificate {
  const x = new X509Certificate(cert);
  return { cert, key, certFile, keyFile, fingerprint256: fingerprintOf(x), source, generated, names: certificateSans(x), notAfter: new Date(x.validTo) };
}

/** The operator's certificate (NATFARM_TLS_CERT / NATFARM_TLS_KEY), checked before anything listens. */
export function loadConfigured(certFile: string, keyFile: string, now = new Date()): LoadedCertificate {
  const cert = readIfThere(certFile);
  if (cert === null) throw new CertificateError(`NATFARM_TLS_CERT: ${certFile} does not exist`);
  const key = readIfThere(keyFile);
  if (key === null) throw new CertificateError(`NATFARM_TLS_KEY: ${keyFile} does not exist`);
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (e) {
    throw new CertificateError(`NATFARM_TLS_CERT: ${certFile} is not a PEM certificate (${(e as Error).message})`);
  }
  if (!keyMatches(x, key)) throw new CertificateError(`NATFARM_TLS_KEY: ${keyFile} is not the private key of ${certFile}`);
  if (new Date(x.validTo).getTime() < now.getTime()) throw new CertificateError(`NATFARM_TLS_CERT: ${certFile} expired on ${new Date(x.validTo).toISOString()}`);
  return describe(cert, key, certFile, keyFile, "configured", null);
}

/** The certificate the configuration asks for (null for NATFARM_TLS=off). */
export async function loadCertificate(
  c: WebConfig,
  names: { required: readonly string[]; extra: readonly string[] },
  o: { hostname: string; owner?: Owner; now?: Date },
): Promise<LoadedCertificate | null> {
  if (c.tls.kind === "off") return null;
  if (c.tls.kind === "files") return loadConfigured(c.tls.cert, c.tls.key, o.now);
  return ensureSelfSigned({ dir: c.tls.dir, required: names.required, extra: names.extra, hostname: o.hostname, owner: o.owner, now: o.now });
}

/** One line for the logs: which certificate, why it was made, its fingerprint. */
export function describeCertificate(cert: LoadedCertificate | null): string {
  if (!cert) return "plain HTTP (NATFARM_TLS=off, loopback only)";
  const what = cert.source === "configured" ? `certificate ${cert.certFile}` : `self-signed certificate ${cert.certFile}${cert.generated ? ` (made now: ${cert.generated})` : ""}`;
  return `${what}, SHA-256 fingerprint ${cert.fingerprint256}`;
}
