import type { Command } from "commander";
import { UsageError } from "./errors.ts";

/**
 * `natfarm user add|list|remove|passwd|totp-reset`: the console's logins,
 * without a browser (the first administrator on a machine, a locked-out
 * one, one who lost their authenticator device).
 * Passwords come from stdin only (`--password-stdin`): never from the
 * command line, where `ps` and the shell's history would show them. On a
 * terminal the password is asked twice without echo; from a pipe the first
 * line is the password.
 */
const ROLES = ["admin", "operator", "viewer"];

async function readPassword(prompt: boolean): Promise<string> {
  const stdin = process.stdin;
  if (prompt && stdin.isTTY) {
    const ask = (q: string) =>
      new Promise<string>((resolve, reject) => {
        process.stderr.write(q);
        stdin.setRawMode(true);
        stdin.resume();
        stdin.setEncoding("utf8");
        let s = "";
        const onData = (chunk: string) => {
          for (const ch of chunk) {
            if (ch === "\r" || ch === "\n" || ch === "\u0004") {
              stdin.off("data", onData);
              stdin.setRawMode(false);
              stdin.pause();
              process.stderr.write("\n");
              resolve(s);
              return;
            }
            if (ch === "\u0003") {
              stdin.off("data", onData);
              stdin.setRawMode(false);
              process.stderr.write("\n");
              reject(new UsageError("cancelled"));
              return;
            }
            if (ch === "\u007f" || ch === "\b") s = s.slice(0, -1);
            else s += ch;
          }
        };
        stdin.on("data", onData);
      });
    const a = await ask("Password: ");
    const b = await ask("Password again: ");
    if (a !== b) throw new UsageError("the two passwords differ");
    return a;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new UsageError("the password on stdin is too long");
  }
  const text = Buffer.concat(chunks).toString("utf8");
  const nl = text.search(/\r?\n/);
  return nl >= 0 ? text.slice(0, nl) : text;
}

export function registerUserCommands(program: Command, out: (s: string) => void): void {
  const load = async () => {
    const [{ openDatabase, disconnectPrisma }, users, tokens, totp, { audit }, os] = await Promise.all([
      import("../db/client.ts"),
      import("../auth/users.ts"),
      import("../auth/tokens.ts"),
      import("../auth/totp.ts"),
      import("../auth/audit.ts"),
      import("node:os"),
    ]);
    const db = await openDatabase();
    // Who ran the command, as the system knows them.
    const actor = `cli:${os.userInfo().username}`;
    const record = (action: string, detail: string) => audit(db, { actor, via: "cli", action, result: "ok", detail });
    return { db, disconnectPrisma, record, ...users, ...tokens, ...totp };
  };
  const run = async <T>(fn: (m: Awaited<ReturnType<typeof load>>) => Promise<T>): Promise<T> => {
    const m = await load();
    try {
      return await fn(m);
    } catch (e) {
      if ((e as Error)?.name === "UserError") throw new UsageError((e as Error).message);
      throw e;
    } finally {
      await m.disconnectPrisma();
    }
  };
  const user = program.command("user").description("the console's logins: add, list, remove, passwd, totp-reset");

  user
    .command("add <name>")
    .description("create a user (the password from stdin, at least 10 characters)")
    .requiredOption("--role <role>", `one of ${ROLES.join(", ")}`)
    .option("--password-stdin", "read the password from stdin (asked twice without echo on a terminal)")
    .action(async (name: string, o: { role: string; passwordStdin?: boolean }) => {
      if (!ROLES.includes(o.role)) throw new UsageError(`--role: one of ${ROLES.join(", ")}`);
      if (!o.passwordStdin) throw new UsageError("give the password on stdin with --password-stdin (never on the command line)");
      const password = await readPassword(true);
      await run(async (m) => {
        const u = await m.createUser(m.db, name, o.role, password);
        await m.record("user.add", `${u.name} (${u.role})`);
        out(`created user ${u.name} (${u.role})`);
      });
    });

  user
    .command("list")
    .description("the users, their roles and open sessions")
    .option("--json", "as JSON")
    .action(async (o: { json?: boolean }) => {
      await run(async (m) => {
        const list = await m.listUsers(m.db);
        if (o.json) out(JSON.stringify(list.map((u) => ({ name: u.name, role: u.role, createdAt: u.createdAt.toISOString(), lastLoginAt: u.lastLoginAt?.toISOString() ?? null, sessions: u.sessions, totp: u.totp }))));
        else if (list.length === 0) out("no users (npm start prints a setup link; or natfarm user add NAME --role admin --password-stdin)");
        else for (const u of list) out(`${u.name}\t${u.role}\t${u.sessions} session(s)\t${u.totp ? "totp on" : "no totp"}\tcreated ${u.createdAt.toISOString()}`);
      });
    });

  user
    .command("remove <name>")
    .description("delete a user and end their sessions")
    .action(async (name: string) => {
      await run(async (m) => {
        await m.removeUser(m.db, name);
        await m.record("user.remove", name);
        out(`removed user ${name}`);
      });
    });

  user
    .command("passwd <name>")
    .description("set a user's password (from stdin) and end their sessions")
    .option("--password-stdin", "read the password from stdin (the default; asked twice without echo on a terminal)")
    .action(async (name: string) => {
      const password = await readPassword(true);
      await run(async (m) => {
        await m.setPassword(m.db, name, password);
        await m.record("user.passwd", `${name} (sessions ended)`);
        out(`password of ${name} changed; their sessions ended`);
      });
    });

  user
    .command("totp-reset <name>")
    .description("turn off a user's two-factor login (a lost device): they log in with the password alone and can enrol again")
    .action(async (name: string) => {
      await run(async (m) => {
        const { wasOn } = await m.resetTotp(m.db, name);
        await m.record("user.totp-reset", `${name} (${wasOn ? "two-factor login was on" : "two-factor login was not on"})`);
        out(wasOn ? `two-factor login of ${name} turned off; they can log in with the password and enrol again` : `${name} had no two-factor login; nothing to reset`);
      });
    });

  const token = program.command("token").description("API tokens (Authorization: Bearer): create, list, revoke");

  token
    .command("create")
    .description("make an API token for a user; prints the secret alone on stdout (shown once, stored hashed)")
    .requiredOption("--user <name>", "the user the token acts as")
    .option("--role <role>", "the token's role, no higher than the user's (default: the user's)")
    .option("--name <name>", "what the token is for", "token")
    .option("--expires <duration>", "lifetime: 30d, 12h, 90m ... (default: no expiry)")
    .action(async (o: { user: string; role?: string; name: string; expires?: string }) => {
      await run(async (m) => {
        const { secret, token: t } = await m.createToken(m.db, { user: o.user, role: o.role, name: o.name, expires: o.expires });
        await m.record("token.create", `token ${t.id} "${t.name}" for ${t.user} (${t.role}), expires ${t.expiresAt?.toISOString() ?? "never"}`);
        out(secret);
      });
    });

  token
    .command("list")
    .description("the tokens (never their secrets), with last use")
    .option("--user <name>", "only this user's")
    .option("--json", "as JSON")
    .action(async (o: { user?: string; json?: boolean }) => {
      await run(async (m) => {
        const list = await m.listTokens(m.db, o.user);
        if (o.json) out(JSON.stringify(list));
        else if (list.length === 0) out("no tokens");
        else
          for (const t of list)
            out(
              [t.id, t.user, t.role, t.name, `${t.prefix}…`, t.revokedAt ? "revoked" : t.expiresAt && t.expiresAt <= new Date() ? "expired" : "active", `expires ${t.expiresAt?.toISOString() ?? "never"}`, `last used ${t.lastUsedAt?.toISOString() ?? "never"}`].join("\t"),
            );
      });
    });

  token
    .command("revoke <id>")
    .description("revoke a token: it answers 401 from now on")
    .action(async (id: string) => {
      if (!/^\d+$/.test(id)) throw new UsageError("token id: a number (natfarm token list)");
      await run(async (m) => {
        await m.revokeToken(m.db, Number(id));
        await m.record("token.revoke", `token ${id}`);
        out(`revoked token ${id}`);
      });
    });
}
