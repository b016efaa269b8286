import { writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import type { Command } from "commander";
import { readTarget } from "../privileged/target-text.ts";
import { engineOf, engineOption } from "./engine-option.ts";
import { UsageError } from "./errors.ts";

/**
 * `natfarm config history|show|diff|export|revert|backup|restore`: the
 * configuration history (lib/service/config-history.ts) on the command
 * line, through the same farm service as the console and the API. Changes
 * are by "cli (<system user>)"; revert and restore apply to the target as
 * any change does (default: NATFARM_TARGET, as `natfarm restore` reads it).
 */
export function cliAuthorName(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry: keep "unknown" */
  }
  const sudo = process.env.SUDO_USER?.trim();
  return `cli (${user}${sudo && sudo !== user ? `, sudo by ${sudo}` : ""})`;
}

const revisionId = (v: string) => {
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1) throw new UsageError(`a revision is a whole number from 1 (got "${v}")`);
  return Number(v);
};

const at = (d: Date) => `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;

/**
 * The farm service as the CLI's configuration commands use it: the author
 * "cli (<system user>)"; with `apply`, the target to apply to (--target, or
 * NATFARM_TARGET as the console reads it; none: changes stay pending).
 */
export async function openConfigService(opts: { apply?: boolean; target?: string; engine?: string } = {}) {
  const [{ openDatabase, disconnectPrisma }, svc, history, diff, errors, { parseConsoleEnv }, { ensureLab }, { kernel, withEngine }] = await Promise.all([
    import("../db/client.ts"),
    import("../service/farm-service.ts"),
    import("../service/config-history.ts"),
    import("../service/config-diff.ts"),
    import("../service/errors.ts"),
    import("../console/env.ts"),
    import("../service/lab.ts"),
    import("../kernel/index.ts"),
  ]);
  history.setDefaultAuthor({ name: cliAuthorName(), via: "cli" });
  let target = null;
  if (opts.apply) {
    if (opts.target) {
      const r = readTarget(opts.target);
      if (!r.ok) throw new UsageError(r.message);
      target = r.target;
    } else {
      const t = parseConsoleEnv(process.env).target;
      if (t.canApply) {
        if (t.kind === "lab") await ensureLab(t);
        target = t.target;
      }
    }
  }
  const db = await openDatabase();
  const service = svc.createFarmService({ db, target, kernel: opts.engine ? withEngine(kernel(), opts.engine as never) : kernel() });
  return { db, service, history, diff, errors, close: disconnectPrisma };
}

export function registerConfigCommands(program: Command, out: (s: string) => void): void {
  /** A change's result: its sentence on stdout, or on stderr with exit 2 (bad input, nothing changed) or 1 (the kernel). */
  const finish = (r: { ok: boolean; reason?: string; message: string }, json: boolean) => {
    if (json) out(JSON.stringify(r));
    if (r.ok) {
      if (!json) out(r.message);
      return;
    }
    if (r.reason === "invalid" || r.reason === "not-found") throw new UsageError(r.message);
    throw new Error(r.message);
  };

  const config = program.command("config").description("the configuration history: every change as a revision, diff, revert, backup and restore");

  const open = openConfigService;

  config
    .command("history")
    .description("list the revisions, newest first")
    .option("-n, --limit <n>", "how many (default 50)", (v) => {
      if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new UsageError("--limit is a whole number from 1 to 1000");
      return Number(v);
    })
    .option("--before <id>", "only revisions older than this one", revisionId)
    .option("--json", "print as JSON")
    .action(async (o) => {
      const m = await open();
      try {
        const revs = await m.service.revisions({ limit: o.limit ?? 50, before: o.before });
        if (o.json) return out(JSON.stringify({ revisions: revs }));
        if (revs.length === 0) return out("no revision yet: the history starts with the next change");
        for (const r of revs) out(`${String(r.id).padStart(6)}  ${at(r.at)}  ${r.author} (${r.via})  ${r.summary}`);
      } finally {
        await m.close();
      }
    });

  config
    .command("show <id>")
    .description("one revision: who, when, what, and its diff against the one before")
    .option("--json", "print as JSON")
    .action(async (id: string, o) => {
      const n = revisionId(id);
      const m = await open();
      try {
        const r = await m.service.revision(n);
        if (!r) throw new UsageError(`there is no revision ${n}`);
        if (o.json) return out(JSON.stringify(r));
        out(`revision ${r.id}  ${at(r.at)}  ${r.author} (${r.via})\n${r.summary}`);
        const diffs = r.changes.map((c) => ({ farm: c.farm, kind: "changed" as const, words: m.diff.describeFarmChange(c.before, c.after), json: m.diff.lineDiff(c.before ? JSON.stringify(c.before, null, 2).split("\n") : [], c.after ? JSON.stringify(c.after, null, 2).split("\n") : []), rules: m.diff.lineDiff(m.diff.farmRuleLines(c.before), m.diff.farmRuleLines(c.after)) }));
        out(m.diff.diffText(diffs));
      } finally {
        await m.close();
      }
    });

  config
    .command("diff <from> [to]")
    .description("what differs from revision <from> to revision [to] (default: the configuration now): farms and rendered rules")
    .option("--json", "print as JSON")
    .option("--no-rules", "the farms only, not their rules")
    .action(async (from: string, to: string | undefined, o) => {
      const a = revisionId(from);
      const b = to === undefined ? null : revisionId(to);
      const m = await open();
      try {
        const r = await m.service.compare(a, b);
        if (!("diffs" in r)) throw new UsageError(r.message);
        if (o.json) return out(JSON.stringify(r));
        out(r.diffs.length ? m.diff.diffText(r.diffs, { rules: o.rules }) : "no difference");
      } finally {
        await m.close();
      }
    });

  config
    .command("export <id>")
    .description("a revision's whole configuration as a farm file (importable)")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action(async (id: string, o) => {
      const n = revisionId(id);
      const m = await open();
      try {
        let farms;
        try {
          farms = await m.service.configAt(n);
        } catch (e) {
          if ((e as Error).name === "RevisionGone") throw new UsageError((e as Error).message);
          throw e;
        }
        const text = `${JSON.stringify({ farms }, null, 2)}\n`;
        if (o.output) {
          await writeFile(o.output, text);
          out(`revision ${n} exported to ${o.output}`);
        } else out(text);
      } finally {
        await m.close();
      }
    });

  engineOption(config
    .command("revert <id>")
    .description("make revision <id>'s configuration the current one (a new revision), and apply it")
    .option("-t, --target <target>", "host or netns:<name> (default: NATFARM_TARGET, as the console reads it; NATFARM_TARGET=none: written, pending)")
    .option("--json", "print the result as JSON"))
    .action(async (id: string, o) => {
      const n = revisionId(id);
      const m = await open({ apply: true, target: o.target, engine: engineOf(o) });
      try {
        finish(await m.service.revert(n), o.json);
      } finally {
        await m.close();
      }
    });

  config
    .command("backup")
    .description("the whole configuration as a farm file (what `config restore` and the console's Restore take)")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action(async (o) => {
      const m = await open();
      try {
        const text = `${JSON.stringify(await m.service.backup(), null, 2)}\n`;
        if (o.output) {
          await writeFile(o.output, text);
          out(`backup written to ${o.output}`);
        } else out(text);
      } finally {
        await m.close();
      }
    });

  engineOption(config
    .command("restore")
    .description("make a backup file the whole configuration (a new revision), and apply it; a bad file changes nothing")
    .requiredOption("-f, --file <file>", "the backup (farm file JSON), - for stdin")
    .option("-t, --target <target>", "host or netns:<name> (default: NATFARM_TARGET)")
    .option("--json", "print the result as JSON"))
    .action(async (o) => {
      const { readFile } = await import("node:fs/promises");
      let text: string;
      try {
        text = o.file === "-" ? await readStdin() : await readFile(o.file, "utf8");
      } catch (e) {
        throw new UsageError(`cannot read ${o.file}: ${(e as Error).message}`);
      }
      const m = await open({ apply: true, target: o.target, engine: engineOf(o) });
      try {
        finish(await m.service.restore(text, o.file === "-" ? "stdin" : o.file), o.json);
      } finally {
        await m.close();
      }
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
