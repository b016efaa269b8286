import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { createTestDatabase } from "../helpers/db.ts";

/** `natfarm user ...` through the real binary, on a throwaway database; the password only ever on stdin. */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "natfarm.mjs");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-user-cli-"));
// SQLite, or PostgreSQL in vitest's postgresql project.
const tdb = await createTestDatabase("usercli");

function natfarm(args: string[], input = "") {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: "utf8", env: { ...process.env, NATFARM_DATABASE_URL: tdb.url }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const rows = () => tdb.query<{ name: string; role: string; passwordHash: string }>('SELECT name, role, "passwordHash" FROM "User" ORDER BY name');

afterAll(async () => {
  await disconnectPrisma(tdb.url);
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("natfarm user", () => {
  it("add reads the password from stdin and stores only its argon2id hash", () => {
    const r = natfarm(["user", "add", "root", "--role", "admin", "--password-stdin"], "first admin password\n");
    expect(r).toMatchObject({ code: 0, stdout: "created user root (admin)\n" });
    const [u] = rows();
    expect(u).toMatchObject({ name: "root", role: "admin" });
    expect(u!.passwordHash).toMatch(/^\$argon2id\$/);
    expect(u!.passwordHash).not.toContain("first admin password");
  });

  it("refuses with exit 2: a short password, a bad role, no --password-stdin, a duplicate, an unknown user", () => {
    expect(natfarm(["user", "add", "op", "--role", "operator", "--password-stdin"], "short\n")).toMatchObject({ code: 2, stderr: expect.stringMatching(/at least 10 characters/) });
    expect(natfarm(["user", "add", "op", "--role", "root", "--password-stdin"], "long enough password\n")).toMatchObject({ code: 2, stderr: expect.stringMatching(/--role/) });
    expect(natfarm(["user", "add", "op", "--role", "viewer"], "long enough password\n")).toMatchObject({ code: 2, stderr: expect.stringMatching(/password-stdin/) });
    expect(natfarm(["user", "add", "root", "--role", "viewer", "--password-stdin"], "long enough password\n")).toMatchObject({ code: 2, stderr: expect.stringMatching(/already exists/) });
    expect(natfarm(["user", "remove", "ghost"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no user named "ghost"/) });
    expect(rows().map((u) => u.name)).toEqual(["root"]);
  });

  it("list, passwd, remove", async () => {
    expect(natfarm(["user", "add", "vera", "--role", "viewer", "--password-stdin"], "viewer password 1")).toMatchObject({ code: 0 });
    const list = natfarm(["user", "list", "--json"]);
    expect(JSON.parse(list.stdout).map((u: { name: string; role: string }) => `${u.name}:${u.role}`)).toEqual(["root:admin", "vera:viewer"]);
    const before = rows()[1]!.passwordHash;
    expect(natfarm(["user", "passwd", "vera", "--password-stdin"], "viewer password 2\n")).toMatchObject({ code: 0 });
    expect(rows()[1]!.passwordHash).not.toBe(before);
    // A lost authenticator: totp-reset turns the second factor off (and ends half-finished logins).
    await getPrisma(tdb.url).user.update({ where: { name: "vera" }, data: { totpSecret: "v1.x.y.z", totpEnabledAt: new Date() } });
    expect(JSON.parse(natfarm(["user", "list", "--json"]).stdout).map((u: { totp: boolean }) => u.totp)).toEqual([false, true]);
    expect(natfarm(["user", "totp-reset", "vera"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/two-factor login of vera turned off/) });
    expect(JSON.parse(natfarm(["user", "list", "--json"]).stdout).map((u: { totp: boolean }) => u.totp)).toEqual([false, false]);
    expect(natfarm(["user", "totp-reset", "vera"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/had no two-factor login/) });
    expect(natfarm(["user", "totp-reset", "ghost"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no user named "ghost"/) });
    expect(natfarm(["user", "remove", "vera"])).toMatchObject({ code: 0, stdout: "removed user vera\n" });
    expect(rows().map((u) => u.name)).toEqual(["root"]);
  });

  it("token create prints the secret alone; list never shows it; revoke", () => {
    const made = natfarm(["token", "create", "--user", "root", "--role", "viewer", "--name", "ci", "--expires", "30d"]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^nft_[A-Za-z0-9_-]{43}\n$/);
    const secret = made.stdout.trim();
    const list = natfarm(["token", "list", "--json"]);
    expect(list.stdout).not.toContain(secret);
    const [t] = JSON.parse(list.stdout) as { id: number; user: string; role: string; name: string; prefix: string; expiresAt: string; revokedAt: string | null }[];
    expect(t).toMatchObject({ user: "root", role: "viewer", name: "ci", prefix: secret.slice(0, 10), revokedAt: null });
    expect(Date.parse(t!.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(natfarm(["token", "create", "--user", "nobody"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no user named "nobody"/) });
    expect(natfarm(["token", "revoke", String(t!.id)])).toMatchObject({ code: 0, stdout: `revoked token ${t!.id}\n` });
    expect(natfarm(["token", "revoke", String(t!.id)]).code).toBe(2);
    const audit = tdb.query<{ actor: string; via: string; action: string }>("SELECT actor, via, action, result FROM AuditEntry ORDER BY id");
    expect(audit.map((a) => a.action)).toEqual(["user.add", "user.add", "user.passwd", "user.totp-reset", "user.totp-reset", "user.remove", "token.create", "token.revoke"]);
    expect(new Set(audit.map((a) => `${a.actor} ${a.via}`))).toEqual(new Set([`cli:${os.userInfo().username} cli`]));
  });
});
