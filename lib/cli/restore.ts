import type { Command } from "commander";
import { readTarget } from "../privileged/target-text.ts";
import { UsageError } from "./errors.ts";
import { engineOf, engineOption } from "./engine-option.ts";

/**
 * `natfarm restore`: puts the database's farms back into the kernel (one full
 * apply), as after a reboot. The console does the same when it starts; the
 * systemd unit in docs/ runs it at boot without the console.
 */
export function registerRestoreCommand(program: Command, out: (s: string) => void, warn: (warnings: Iterable<string>) => void = () => {}): void {
  engineOption(
    program
      .command("restore")
      .description("re-apply the database's farms to the target (at boot; the console does it at start)")
      .option("-t, --target <target>", "host or netns:<name> (default: NATFARM_TARGET, as the console reads it)")
      .option("--json", "print the result as JSON"),
  ).action(async (o) => {
      const [{ openDatabase, disconnectPrisma }, { createFarmService }, { exitCodeOf }, { parseConsoleEnv }, { ensureLab }, { kernel, withEngine }] = await Promise.all([
        import("../db/client.ts"),
        import("../service/farm-service.ts"),
        import("../service/errors.ts"),
        import("../console/env.ts"),
        import("../service/lab.ts"),
        import("../kernel/index.ts"),
      ]);
      const engine = engineOf(o);
      let target;
      if (o.target) {
        const r = readTarget(o.target);
        if (!r.ok) throw new UsageError(r.message);
        target = r.target;
      } else {
        const t = parseConsoleEnv(process.env).target;
        if (!t.canApply) throw new Error(`nothing to restore into: ${t.reason}`);
        if (t.kind === "lab") await ensureLab(t);
        target = t.target;
      }
      const db = await openDatabase();
      try {
        const result = await createFarmService({ db, target, kernel: withEngine(kernel(), engine) }).applyAll("restore");
        if (result.ok && !o.json) warn(result.warnings ?? []);
        out(o.json ? JSON.stringify(result) : result.message);
        if (!result.ok) process.exitCode = exitCodeOf(result);
      } finally {
        await disconnectPrisma();
      }
    });
}
