import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CertificateError, certificateSans, ensureSelfSigned, generateSelfSigned, loadConfigured } from "../../lib/web/tls.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-web-tls-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(tmp, `d${n++}`, "tls");
const REQUIRED = ["localhost", "127.0.0.1", "::1", "lb1"];
const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe("the self-signed certificate", () => {
  it("is made at the first start: EC key 0600 in a 0700 directory, SANs, SHA-256 fingerprint", async () => {
    const dir = freshDir();
    const c = await ensureSelfSigned({ dir, required: REQUIRED, extra: ["192.0.2.7"], hostname: "lb1" });
    expect(c.generated).toBe("there was none");
    expect(c.source).toBe("self-signed");
    expect(mode(dir)).toBe(0o700);
    expect(mode(path.join(dir, "key.pem"))).toBe(0o600);
    expect(mode(path.join(dir, "cert.pem"))).toBe(0o644);
    const x = new X509Certificate(fs.readFileSync(path.join(dir, "cert.pem")));
    expect(certificateSans(x)).toEqual([...REQUIRED, "192.0.2.7"]);
    expect(x.checkHost("localhost")).toBe("localhost");
    expect(x.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(x.checkIP("::1")).toBe("::1");
    expect(x.ca).toBe(false);
    expect(x.publicKey.asymmetricKeyType).toBe("ec");
    expect(c.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(c.fingerprint256).toBe(x.fingerprint256);
    expect(new Date(x.validTo).getTime() - Date.now()).toBeGreaterThan(800 * 86_400_000);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("is kept across starts (same fingerprint), and its modes are put right", async () => {
    const dir = freshDir();
    const a = await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" });
    fs.chmodSync(path.join(dir, "key.pem"), 0o644);
    const b = await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" });
    expect(b.generated).toBeNull();
    expect(b.fingerprint256).toBe(a.fingerprint256);
    expect(mode(path.join(dir, "key.pem"))).toBe(0o600);
  });

  it("is made again when it lacks a name it must hold, expires soon, or the key is not its key", async () => {
    const dir = freshDir();
    const a = await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" });
    const b = await ensureSelfSigned({ dir, required: [...REQUIRED, "198.51.100.1"], hostname: "lb1" });
    expect(b.generated).toBe("it does not name 198.51.100.1");
    expect(b.fingerprint256).not.toBe(a.fingerprint256);
    const later = new Date(Date.now() + 810 * 86_400_000);
    const c = await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1", now: later });
    expect(c.generated).toMatch(/^it expires on \d{4}-\d\d-\d\d$/);
    const other = await generateSelfSigned(REQUIRED, "lb1");
    fs.writeFileSync(path.join(dir, "key.pem"), other.key);
    const d = await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" });
    expect(d.generated).toBe("the key is not the certificate's");
  });

  it("hands the files to the user the web server runs as", async () => {
    const dir = freshDir();
    const owner = { uid: 65534, gid: 65534 };
    await ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1", owner });
    for (const f of [dir, path.join(dir, "key.pem"), path.join(dir, "cert.pem")]) {
      const st = fs.statSync(f);
      expect([st.uid, st.gid], f).toEqual([65534, 65534]);
    }
  });

  it("never overwrites a certificate that is not natfarm's", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    const { generate } = await import("selfsigned");
    const foreign = await generate([{ name: "commonName", value: "console.example" }], { keyType: "ec", algorithm: "sha256" });
    fs.writeFileSync(path.join(dir, "cert.pem"), foreign.cert);
    fs.writeFileSync(path.join(dir, "key.pem"), foreign.private);
    await expect(ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" })).rejects.toThrow(/is not natfarm's self-signed certificate.*NATFARM_TLS_CERT=/);
    expect(fs.readFileSync(path.join(dir, "cert.pem"), "utf8")).toBe(foreign.cert);
  });

  it("two starts at once end with one matching pair", async () => {
    const dir = freshDir();
    const all = await Promise.all([0, 1, 2].map(() => ensureSelfSigned({ dir, required: REQUIRED, hostname: "lb1" })));
    expect(new Set(all.map((c) => c.fingerprint256)).size).toBe(1);
    expect(all.filter((c) => c.generated).length).toBe(1);
  });
});

describe("the operator's certificate", () => {
  it("is used as it is when it parses and the key is its key", async () => {
    const dir = path.join(tmp, "own");
    fs.mkdirSync(dir);
    const a = await generateSelfSigned(["console.example"], "x");
    const b = await generateSelfSigned(["console.example"], "x");
    fs.writeFileSync(path.join(dir, "c.pem"), a.cert);
    fs.writeFileSync(path.join(dir, "k.pem"), a.key);
    fs.writeFileSync(path.join(dir, "other-k.pem"), b.key);
    fs.writeFileSync(path.join(dir, "junk.pem"), "not a certificate");
    const c = loadConfigured(path.join(dir, "c.pem"), path.join(dir, "k.pem"));
    expect(c).toMatchObject({ source: "configured", generated: null, names: ["console.example"] });
    expect(() => loadConfigured(path.join(dir, "c.pem"), path.join(dir, "other-k.pem"))).toThrow(/is not the private key of/);
    expect(() => loadConfigured(path.join(dir, "junk.pem"), path.join(dir, "k.pem"))).toThrow(/is not a PEM certificate/);
    expect(() => loadConfigured(path.join(dir, "none.pem"), path.join(dir, "k.pem"))).toThrow(CertificateError);
    expect(() => loadConfigured(path.join(dir, "c.pem"), path.join(dir, "k.pem"), new Date(Date.now() + 900 * 86_400_000))).toThrow(/expired/);
  });
});
