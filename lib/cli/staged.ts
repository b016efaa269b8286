import type { Command } from "commander";
import { cliAuthorName, openConfigService } from "./config.ts";
import { engineOf, engineOption } from "./engine-option.ts";
import { UsageError } from "./errors.ts";

/**
 * `natfarm staged show|apply [--savepoint]|discard|confirm|on|off`: staged
 * changes (lib/service/staging.ts) through the same farm service calls as
 * the console's banner and /api/v1/staged. The CLI has no console session:
 * what it stages follows the installation setting. Each change is audited
 * as "cli (<system user>)", the author of the revisions it makes.
 */
export function registerStagedCommands(program: Command, out: (s: string) => void): void {
  const staged = program.command("staged").description("staged changes: what is pending, apply (optionally under a savepoint), discard, confirm, and the installation setting");

  /** Runs one change, audits it and prints its sentence (exit 2: refused, nothing changed; 1: the kernel). */
  async function change(action: string, o: { target?: string; engine?: string; json?: boolean }, run: (s: Awaited<ReturnType<typeof openConfigService>>["service"]) => Promise<{ ok: boolean; reason?: string; message: string }>) {
    const m = await openConfigService({ apply: true, target: o.target, engine: o.engine });
    try {
      const r = await run(m.service);
      const { audit } = await import("../auth/audit.ts");
      await audit(m.db, { actor: cliAuthorName(), via: "cli", action: `staged ${action}`, result: r.ok ? "ok" : r.reason === "invalid" ? "invalid" : "failed", detail: r.message.slice(0, 1000) });
      if (o.json) out(JSON.stringify(r));
      if (r.ok) {
        if (!o.json) out(r.message);
        return;
      }
      if (r.reason === "invalid" || r.reason === "not-found") throw new UsageError(r.message);
      throw new Error(r.message);
    } finally {
      await m.close();
    }
  }

  const withTarget = (c: Command) => engineOption(c.option("-t, --target <target>", "host or netns:<name> (default: NATFARM_TARGET, as the console reads it)").option("--json", "print the result as JSON"));

  withTarget(staged.command("show").description("the pending changes: revisions, and per farm what Apply changes adds and removes (against the kernel now, when it can be read)").option("--no-live", "compare with the configuration last applied only, without reading the kernel")).action(async (o) => {
    const m = await openConfigService({ apply: o.live !== false, target: o.target, engine: engineOf(o) });
    try {
      const v = await m.service.staging({ live: o.live !== false });
      if (o.json) return out(JSON.stringify(v));
      out(`staged changes: ${v.enabled ? "on" : "off"} (installation setting)`);
      if (v.savepoint) out(`an apply waits for its confirmation until ${v.savepoint.until.toISOString()} (natfarm staged confirm), or it rolls back`);
      if (v.lastOutcome) out(`last savepoint: ${v.lastOutcome}`);
      if (v.farms.length === 0) return out("nothing is pending");
      out(`${v.revisions.length} pending change${v.revisions.length === 1 ? "" : "s"} in ${v.farms.length} farm${v.farms.length === 1 ? "" : "s"}:`);
      for (const r of v.revisions) out(`  #${r.id} ${r.summary} (${r.author}, ${r.via})`);
      const live = new Map((v.live?.farms ?? []).map((f) => [f.farm, f]));
      if (v.live?.error) out(`the kernel could not be read (${v.live.error}): rules compared with the configuration last applied`);
      for (const d of v.diffs) {
        out(`# ${d.words}`);
        const l = live.get(d.farm);
        if (l?.drifted) out(`# the kernel no longer holds what was last applied for farm ${d.farm} (changed outside natfarm)`);
        const lines = l ? [...l.remove.map((x) => `- ${x}`), ...l.add.map((x) => `+ ${x}`)] : d.rules.filter((x) => x.op !== " ").map((x) => `${x.op} ${x.line}`);
        out(`# rules of farm ${d.farm} ${l ? "against the kernel now" : "against the configuration last applied"}${lines.length ? "" : ": none change"}`);
        for (const x of lines) out(x);
      }
    } finally {
      await m.close();
    }
  });

  withTarget(staged.command("apply").description("every pending change into the kernel in one transaction").option("--savepoint", "unless `natfarm staged confirm` comes within NATFARM_SAVEPOINT_SECONDS (default 60), the configuration before goes back by itself (the health checker's loop rolls back)")).action((o) =>
    change(o.savepoint ? "apply (savepoint)" : "apply", { ...o, engine: engineOf(o) }, (s) => s.applyStaged({ savepoint: o.savepoint === true })),
  );
  withTarget(staged.command("discard").description("the configuration back to what the kernel holds (a new revision); the kernel is not touched")).action((o) => change("discard", { ...o, engine: engineOf(o) }, (s) => s.discardStaged()));
  withTarget(staged.command("confirm").description("keep an apply made under a savepoint")).action((o) => change("confirm", { ...o, engine: engineOf(o) }, (s) => s.confirmSavepoint(cliAuthorName())));
  withTarget(staged.command("on").description("the installation setting on: edits (console, API, CLI) are staged until applied")).action((o) => change("on", { ...o, engine: engineOf(o) }, (s) => s.setStaging(true)));
  withTarget(staged.command("off").description("the installation setting off (refused while changes are pending or a savepoint waits)")).action((o) => change("off", { ...o, engine: engineOf(o) }, (s) => s.setStaging(false)));
}
