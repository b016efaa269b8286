import { createHash } from "node:crypto";
import fs from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { agentSocketPath } from "../agent/socket-path.ts";
import { checkedVips } from "../applier/local-vips.ts";
import { unchangedByStamp, writeStamp } from "../applier/stamp.ts";
import type { Target } from "../privileged/target.ts";
import type { Engine } from "../kernel/engine.ts";

/**
 * `natfarm apply` of a file it applied before, the short way (see
 * lib/applier/stamp.ts): only the CLI as root applying the kernel itself (no
 * agent: an agent's applies leave no stamp), with the iptables engine, and
 * only from the prebuilt bundle, whose build identifies the code that
 * rendered the stamped rules (a rebuilt or TypeScript-run CLI goes the whole
 * way once and stamps again).
 */
const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

function buildIdentity(): string | null {
  const here = fileURLToPath(import.meta.url);
  if (path.basename(path.dirname(here)) !== "cli" || path.basename(path.dirname(path.dirname(here))) !== "dist") return null;
  try {
    return fs.readFileSync(path.join(path.dirname(here), "sources.json"), "utf8");
  } catch {
    return null;
  }
}

/** The input's name in the stamp, or null when this run may not use one. */
export function stampInput(engine: Engine, text: string, opts: { dryRun?: boolean }, env: NodeJS.ProcessEnv = process.env): string | null {
  if (engine !== "iptables" || opts.dryRun || !isRoot() || env.NATFARM_AGENT_SOCKET || fs.existsSync(agentSocketPath(env))) return null;
  const build = buildIdentity();
  if (build === null) return null;
  return createHash("sha256").update(build).update("\0iptables\0").update(text).digest("hex");
}

/** The file's bytes (`-` is stdin), or null when it cannot be read: the whole path then reports why. */
export async function readInputText(file: string): Promise<string | null> {
  try {
    if (file !== "-") return await readFile(file, "utf8");
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  } catch {
    return null;
  }
}

export { unchangedByStamp };

/** After a whole apply that reported its digest: what the next run of the same file checks the kernel against. */
export function stampApplied(target: Target, input: string, digest: string, warnings: string[], farms: readonly { status: string; allowLocalVip?: boolean; vip: string }[]): void {
  try {
    writeStamp(target, { input, digest, warnings, vips: checkedVips(farms) });
  } catch {
    // Only a hint: without it the next apply goes the whole way.
  }
}
