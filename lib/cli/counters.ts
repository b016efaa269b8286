import type { Command } from "commander";
import { readTarget } from "../privileged/target-text.ts";
import { cliAuthorName } from "./config.ts";
import { engineOf, engineOption } from "./engine-option.ts";
import { UsageError } from "./errors.ts";

/**
 * `natfarm counters reset [--farm NAME] [--target T] [--engine E] [--json]`:
 * natfarm's own counters to 0, as the console's Reset counters does, through
 * the same service (the agent when it runs, else the kernel directly as
 * root). The target defaults to NATFARM_TARGET's. Bad input (a farm name
 * that cannot be one, an unknown engine or target) exits 2 before anything
 * is asked of the kernel; a refused reset exits 1. Audited in the
 * installation's database as "cli (<user>)" when there is one to write to.
 */
export function registerCountersCommand(program: Command, out: (s: string) => void, warn: (w: Iterable<string>) => void): void {
  const counters = program.command("counters").description("natfarm's own packet and byte counters");
  engineOption(
    counters
      .command("reset")
      .description("reset natfarm's counters to 0 (one farm's with --farm); other software's counters and natfarm's jumps from the built-in chains are left as they are")
      .option("--farm <name>", "only this farm's counters")
      .option("-t, --target <target>", "host or netns:<name> (default: NATFARM_TARGET's)")
      .option("--json", "print the result as JSON"),
  ).action(async (o: { farm?: string; target?: string; engine?: never; json?: boolean }) => {
    const chosen = engineOf(o);
    const [{ resetCounters, CountersResetInputSchema }, { kernel, withEngine }, { parseConsoleEnv }] = await Promise.all([
      import("../service/counters-reset.ts"),
      import("../kernel/index.ts"),
      import("../console/env.ts"),
    ]);
    const input = o.farm === undefined ? {} : { farm: o.farm };
    // Checked before the target is even chosen: bad input asks nothing of the kernel.
    const parsed = CountersResetInputSchema.safeParse(input);
    if (!parsed.success) throw new UsageError(`--farm: ${parsed.error.issues.map((i) => i.message).join("; ")}: nothing was reset`);
    let target;
    if (o.target !== undefined) {
      const r = readTarget(o.target);
      if (!r.ok) throw new UsageError(r.message);
      target = r.target;
    } else {
      const t = parseConsoleEnv(process.env).target;
      if (!t.canApply) throw new UsageError(`no target: ${t.reason} (give --target host or --target netns:<name>)`);
      target = t.target;
    }
    const r = await resetCounters({ kernel: withEngine(kernel(), chosen), target }, parsed.data);
    await auditCli(r.ok ? `${r.message} (${r.target})` : r.message, parsed.data.farm ?? null, r.ok ? "ok" : r.reason === "invalid" ? "invalid" : "failed", warn);
    if (o.json) out(JSON.stringify(r));
    if (r.ok) {
      if (!o.json) out(r.message);
      return;
    }
    if (r.reason === "invalid" || r.reason === "disabled") throw new UsageError(r.message);
    throw new Error(r.message);
  });
}

/** The audit entry, in the installation's database; a CLI without one still resets, and says the entry is missing. */
async function auditCli(detail: string, farm: string | null, result: "ok" | "invalid" | "failed", warn: (w: Iterable<string>) => void): Promise<void> {
  try {
    const [{ openDatabase, disconnectPrisma }, { audit }] = await Promise.all([import("../db/client.ts"), import("../auth/audit.ts")]);
    const db = await openDatabase();
    await audit(db, { actor: cliAuthorName(), via: "cli", address: "local", action: "reset counters", farm, result, detail });
    await disconnectPrisma();
  } catch (e) {
    warn([`the reset is not in the audit log: the database could not be opened (${(e as Error).message})`]);
  }
}
