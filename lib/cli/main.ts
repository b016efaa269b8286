import { Command, CommanderError } from "commander";
import { readTarget } from "../privileged/target-text.ts";
import { registerAgentCommand } from "./agent.ts";
import { registerClusterCommands } from "./cluster.ts";
import { registerConfigCommands } from "./config.ts";
import { registerCountersCommand } from "./counters.ts";
import { registerStagedCommands } from "./staged.ts";
import { registerDbCommands } from "./db-commands.ts";
import { engineOf, engineOption } from "./engine-option.ts";
import { UsageError } from "./errors.ts";
import { registerLabCommands } from "./lab.ts";
import { registerRestoreCommand } from "./restore.ts";
import { registerUserCommands } from "./users.ts";

// Only commander and these registrations load at start: every command loads
// what it needs when it runs (zod, execa and the engine cost more than node
// itself to load), so `natfarm --help` starts at once.
const engine = () => import("./engine.ts");

/**
 * `natfarm`: exit 0 on success, 2 on bad input (the message names the farm,
 * backend and field), 1 when applying or reading the kernel fails.
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;


export function parseTargetOption(value: string) {
  const r = readTarget(value);
  if (!r.ok) throw new UsageError(r.message);
  return r.target;
}

/**
 * Standard output closed by its reader (`natfarm diff | head`): the rest of
 * the output is dropped and the command finishes with its own exit status.
 * 0 rather than 141 (death by SIGPIPE, what a C tool would give): natfarm
 * writes its output after its work is done, so the work succeeded, and a
 * reader that wanted only the first lines must not fail the pipeline under
 * `set -o pipefail`. Failures still exit 1 or 2 with their message on stderr.
 */
let stdoutClosed = false;
let watching = false;
function watchStdout(): void {
  if (watching) return;
  watching = true;
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") {
      stdoutClosed = true;
      return;
    }
    throw e;
  });
}

const out = (s: string) => {
  if (stdoutClosed) return;
  process.stdout.write(s.endsWith("\n") || s === "" ? s : `${s}\n`);
};

/** Accepted, but worth knowing: on stderr, `warning: ...`, the exit status unchanged. */
export function warn(warnings: Iterable<string>): void {
  for (const w of new Set(warnings)) process.stderr.write(`warning: ${w}\n`);
}

function buildProgram(): Command {
  const program = new Command("natfarm")
    .description("Layer-4 NAT load-balancing farms on Linux netfilter")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command("validate")
    .description("check a farm file against the schema")
    .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin")
    .action(async (o) => {
      const { readFarmFile, farmWarnings } = await engine();
      const file = await readFarmFile(o.file);
      warn(farmWarnings(file.farms));
      out(`valid: ${file.farms.length} farm(s), ${file.farms.reduce((n, f) => n + f.backends.length, 0)} backend(s)`);
    });

  engineOption(
    program
      .command("render")
      .description("print the payload (iptables-restore, or nft -f with --engine nftables) that builds the file's farms from nothing")
      .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin"),
  ).action(async (o) => {
    const { readFarmFile, renderFullPayload, renderRuleset, resolveMarks, renderNftPayload } = await engine();
    const file = await readFarmFile(o.file);
    const farms = resolveMarks(file.farms);
    out(engineOf(o) === "nftables" ? renderNftPayload(farms) : renderFullPayload(renderRuleset(farms)));
  });

  engineOption(program
    .command("apply")
    .description("make natfarm's rules in the target exactly the file's farms")
    .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin")
    .requiredOption("-t, --target <target>", "host or netns:<name>", parseTargetOption)
    .option("--dry-run", "print what would be written, write nothing")
    .option("--json", "print the result as JSON"))
    .action(async (o) => {
      const chosen = engineOf(o);
      const started = performance.now();
      const stamps = await import("./apply-stamp.ts");
      const text = await stamps.readInputText(o.file);
      const input = text === null ? null : stamps.stampInput(chosen, text, { dryRun: Boolean(o.dryRun) });
      // The same file as the last whole apply, and the kernel holding exactly what that apply wrote: nothing to do.
      const same = input ? await stamps.unchangedByStamp(o.target, input) : null;
      if (same) {
        warn(same.warnings);
        const durationMs = Math.round(performance.now() - started);
        const stats = { chainsCreated: 0, chainsRewritten: 0, chainsDeleted: 0, rulesAdded: 0, rulesDeleted: 0 };
        out(o.json ? JSON.stringify({ engine: "iptables", changed: false, stats, tables: [], durationMs, payload: "", checkedBy: "stamp" }) : `unchanged: the target already holds exactly these rules (${durationMs} ms)`);
        return;
      }
      const { readFarmFile, parseFarmFile, farmWarnings, kernel, keepRenderedFarms, reportDigests } = await engine();
      // One apply per process: nothing rendered here is rendered again.
      keepRenderedFarms(false);
      reportDigests(input !== null);
      const file = text === null ? await readFarmFile(o.file) : parseFarmFile(text, o.file);
      const port = kernel();
      const r = await port.applyFarms(file.farms, { target: o.target, dryRun: Boolean(o.dryRun), engine: chosen });
      const fileWarnings = farmWarnings(file.farms);
      warn([...fileWarnings, ...(r.warnings ?? [])]);
      if (input && r.digest && port.via === "direct" && (r.engine ?? "iptables") === "iptables") stamps.stampApplied(o.target, input, r.digest, fileWarnings, file.farms);
      if (o.json) {
        out(JSON.stringify({ engine: r.engine ?? "iptables", changed: r.changed, stats: r.stats, ...(r.nftStats ? { nftStats: r.nftStats } : {}), tables: r.tables, ...(r.switchedFrom ? { switchedFrom: r.switchedFrom } : {}), durationMs: Math.round(r.durationMs), payload: r.payload }));
        return;
      }
      if (o.dryRun) {
        out(r.changed ? r.payload : "# nothing to change");
        return;
      }
      const s = r.stats;
      const n = r.nftStats;
      const ms = `(${Math.round(r.durationMs)} ms)`;
      if (!r.changed) out(`unchanged: the target already holds exactly these rules ${ms}`);
      else if (n) out(`applied (nftables): ${n.chainsAdded} chain(s) created, ${n.chainsRewritten} rewritten, ${n.chainsRemoved} deleted; ${n.elementsAdded} map element(s) added, ${n.elementsRemoved} removed${n.rebuilt ? "; table rebuilt" : ""} ${ms}`);
      else out(`applied: ${s.chainsCreated} chain(s) created, ${s.chainsRewritten} rewritten, ${s.chainsDeleted} deleted; ${s.rulesAdded} rule(s) added, ${s.rulesDeleted} removed ${ms}`);
      if (r.switchedFrom) out(`switched from ${r.switchedFrom.engine}: natfarm's ${r.switchedFrom.engine} rules removed (${r.switchedFrom.chainsDeleted} chain(s))`);
    });

  engineOption(program
    .command("diff")
    .description("compare the file's farms with the live rules (drift)")
    .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin")
    .requiredOption("-t, --target <target>", "host or netns:<name>", parseTargetOption)
    .option("--json", "print the report as JSON"))
    .action(async (o) => {
      const chosen = engineOf(o);
      const { readFarmFile, kernel } = await engine();
      const file = await readFarmFile(o.file);
      const r = await kernel().driftReport(file.farms, { target: o.target, engine: chosen });
      if (o.json) {
        out(JSON.stringify(r));
        return;
      }
      for (const f of r.farms) {
        out(`${f.farm}: ${f.status}`);
        for (const m of f.missing) out(`  - missing:    ${m}`);
        for (const u of f.unexpected) out(`  + unexpected: ${u}`);
      }
      for (const s of r.stray) out(`stray: ${s}`);
      out(r.inSync ? "in sync" : `drift: applying would write\n${r.payload}`);
    });

  engineOption(program
    .command("tables")
    .description("show the live mangle and nat tables with counters (nftables: natfarm's table, its chains and maps)")
    .requiredOption("-t, --target <target>", "host or netns:<name>", parseTargetOption)
    .option("--json", "print as JSON")
    .option("--all", "show foreign chains too, not only natfarm's and the hooks"))
    .action(async (o) => {
      const chosen = engineOf(o);
      const { formatTables, kernel } = await engine();
      const snapshot = await kernel().readTables(o.target, { engine: chosen });
      out(o.json ? JSON.stringify(snapshot) : formatTables(snapshot, Boolean(o.all)));
    });

  engineOption(program
    .command("flush")
    .description("remove every natfarm rule and chain from the target, and nothing else")
    .requiredOption("-t, --target <target>", "host or netns:<name>", parseTargetOption))
    .action(async (o) => {
      const chosen = engineOf(o);
      const { kernel } = await engine();
      const r = await kernel().applyFarms([], { target: o.target, engine: chosen });
      // Both engines' rules go: the other engine's count comes with the switch report.
      const other = r.switchedFrom;
      out(
        r.changed
          ? `flushed: ${r.stats.chainsDeleted + (other?.chainsDeleted ?? 0)} chain(s), ${r.stats.rulesDeleted + (other?.rulesDeleted ?? 0)} rule(s) removed${other ? ` (${other.engine}: ${other.chainsDeleted} chain(s))` : ""}`
          : "nothing to flush",
      );
    });

  registerDbCommands(program, out, warn);
  registerConfigCommands(program, out);
  registerStagedCommands(program, out);
  registerRestoreCommand(program, out, warn);
  registerLabCommands(program, out);
  registerClusterCommands(program, out);
  registerAgentCommand(program, out);
  registerUserCommands(program, out);
  registerCountersCommand(program, out, warn);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  watchStdout();
  try {
    await buildProgram().parseAsync(argv);
    // A command that reports its failure itself (restore, import --apply) sets process.exitCode
    // rather than throwing: run.ts assigns what main returns, so returning 0 here would erase it.
    const set = Number(process.exitCode ?? 0);
    return Number.isInteger(set) && set !== 0 ? set : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0) return EXIT_OK;
      return EXIT_BAD_INPUT;
    }
    // By name: the classes live in modules a command loads only when it runs.
    const name = (e as Error)?.name;
    if (e instanceof UsageError || name === "FarmValidationError" || name === "ZodError" || name === "EngineEnvError") {
      process.stderr.write(`natfarm: ${(e as Error).message}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(`natfarm: ${(e as Error)?.message ?? String(e)}\n`);
    return EXIT_FAILED;
  }
}
