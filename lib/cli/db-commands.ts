import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { readTarget } from "../privileged/target-text.ts";
import { engineOf, engineOption } from "./engine-option.ts";
import { UsageError } from "./errors.ts";
import { cliAuthorName } from "./config.ts";

/**
 * `natfarm import` / `natfarm export`: farms between the database (the
 * console's desired state) and the declarative file format. Imported farms
 * are pending until applied: with `--apply -t <target>` right away (one full
 * apply of every farm in the database), otherwise from the console.
 */
export function registerDbCommands(program: Command, out: (s: string) => void, warn: (warnings: Iterable<string>) => void): void {
  const load = async () => {
    const [{ openDatabase, disconnectPrisma }, io, service, errors, file, { farmWarnings }, { kernel, withEngine }] = await Promise.all([
      import("../db/client.ts"),
      import("../service/farm-io.ts"),
      import("../service/farm-service.ts"),
      import("../service/errors.ts"),
      import("../farms/file.ts"),
      import("../farms/warnings.ts"),
      import("../kernel/index.ts"),
    ]);
    // The configuration history names who imported: "cli (<system user>)".
    (await import("../service/config-history.ts")).setDefaultAuthor({ name: cliAuthorName(), via: "cli" });
    return { db: await openDatabase(), disconnectPrisma, farmWarnings, kernel, withEngine, ...io, ...service, ...errors, ...file };
  };
  const target = (value: string) => {
    const r = readTarget(value);
    if (!r.ok) throw new UsageError(r.message);
    return r.target;
  };

  engineOption(program
    .command("import")
    .description("write the file's farms into the database (by name; marks kept)")
    .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin")
    .option("--replace", "also remove farms that the file does not list")
    .option("--apply", "apply every farm of the database afterwards (needs --target)")
    .option("-t, --target <target>", "host or netns:<name>, for --apply", target)
    .option("--json", "print the summary as JSON"))
    .action(async (o) => {
      if (o.apply && !o.target) throw new UsageError("--apply needs --target host|netns:<name>");
      const chosen = o.apply ? engineOf(o) : undefined;
      const m = await load();
      try {
        const parsed = await m.readFarmFile(o.file);
        warn(m.farmWarnings(parsed.farms));
        // What the apply would refuse (a VIP on the target's own address, no agent to apply with) is refused
        // before anything is written.
        if (o.apply) await m.kernel().checkLocalVips(o.target, parsed.farms);
        // Without --apply nothing reaches the kernel: the farms written are "pending" until applied.
        const summary = await m.importFarms(m.db, parsed.farms, { replace: Boolean(o.replace) });
        let applied: Awaited<ReturnType<ReturnType<typeof m.createFarmService>["applyAll"]>> | null = null;
        if (o.apply) {
          applied = await m.createFarmService({ db: m.db, target: o.target, kernel: m.withEngine(m.kernel(), chosen!) }).applyAll("import");
          // The file's own warnings are already out; the applier may add its own.
          if (applied.ok) warn((applied.warnings ?? []).filter((w) => !m.farmWarnings(parsed.farms).includes(w)));
        }
        if (o.json) {
          out(JSON.stringify({ ...summary, apply: applied }));
        } else {
          const list = (xs: string[]) => (xs.length ? xs.join(", ") : "none");
          out(`created: ${list(summary.created)}`);
          out(`updated: ${list(summary.updated)}`);
          out(`unchanged: ${list(summary.unchanged)}`);
          if (o.replace) out(`removed: ${list(summary.removed)}`);
          if (applied) out(applied.message);
          else if (summary.created.length + summary.updated.length + summary.removed.length) {
            out("the changes are pending: apply them from the console, or import again with --apply -t <target>");
            if (summary.removed.length) out("removed farms keep their rules in the kernel until the next full apply (Apply all in the console, or --apply)");
          }
        }
        if (applied && !applied.ok) process.exitCode = m.exitCodeOf(applied);
      } finally {
        await m.disconnectPrisma();
      }
    });

  program
    .command("export")
    .description("print the database's farms in the file format (marks included)")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action(async (o) => {
      const m = await load();
      try {
        const text = `${JSON.stringify(await m.exportFarms(m.db), null, 2)}\n`;
        if (o.output) {
          await writeFile(o.output, text);
          out(`exported to ${o.output}`);
        } else out(text);
      } finally {
        await m.disconnectPrisma();
      }
    });
}
