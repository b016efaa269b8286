import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { VrrpStateSchema } from "./transitions.ts";

/**
 * A node's runtime directory: what keepalived's notify command needs to
 * know about its node (node.json, written when the node is set up) and what
 * it leaves for `natfarm cluster status` (state.json, written on every
 * transition). Plain files: the notify command runs inside the node's
 * namespace as a child of keepalived and needs no database or agent.
 */
export const NodeRuntimeSchema = z
  .object({
    cluster: z.string(),
    nodeId: z.number().int().min(1),
    nodeName: z.string(),
    /** conntrackd runs on this node (the cluster's conntrackd.enabled). */
    conntrackd: z.boolean(),
    /** The named network namespace the node lives in (lab nodes); absent on a real node. */
    netns: z.string().optional(),
  })
  .strict();
export type NodeRuntime = z.infer<typeof NodeRuntimeSchema>;

export const StepResultSchema = z.object({
  args: z.array(z.string()),
  exitCode: z.number(),
  ms: z.number(),
  output: z.string(),
});

export const NodeStateFileSchema = z.object({
  state: VrrpStateSchema,
  /** When keepalived announced the transition (the notify command's start). */
  at: z.string(),
  /** conntrackd's transition steps and how each ended (filled in once they ran). */
  steps: z.array(StepResultSchema).default([]),
  stepsDone: z.boolean().default(false),
});
export type NodeStateFile = z.infer<typeof NodeStateFileSchema>;

export const runtimeFiles = (runDir: string) => ({
  node: path.join(runDir, "node.json"),
  state: path.join(runDir, "state.json"),
  lock: path.join(runDir, "notify.lock"),
  log: path.join(runDir, "notify.log"),
  keepalivedConfig: path.join(runDir, "keepalived.conf"),
  keepalivedPid: path.join(runDir, "keepalived.pid"),
  vrrpPid: path.join(runDir, "vrrp.pid"),
  keepalivedLog: path.join(runDir, "keepalived.log"),
});

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, file);
}

export async function writeNodeRuntime(runDir: string, node: NodeRuntime): Promise<void> {
  // Traversable, not listable: the node's unprivileged health checker and sync loop read
  // node.json and state.json (both 0644) for the node's role; conntrackd's socket and lock keep their own modes.
  await fsp.mkdir(runDir, { recursive: true, mode: 0o711 });
  await fsp.chmod(runDir, 0o711);
  await writeAtomic(runtimeFiles(runDir).node, JSON.stringify(NodeRuntimeSchema.parse(node), null, 2) + "\n");
}

export async function readNodeRuntime(runDir: string): Promise<NodeRuntime> {
  const file = runtimeFiles(runDir).node;
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (e) {
    throw new Error(`${runDir} is not a natfarm cluster node's runtime directory (${file}: ${(e as Error).message})`, { cause: e });
  }
  const r = NodeRuntimeSchema.safeParse(JSON.parse(text));
  if (!r.success) throw new Error(`${file} is not a node description: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

export async function writeNodeState(runDir: string, state: NodeStateFile): Promise<void> {
  await writeAtomic(runtimeFiles(runDir).state, JSON.stringify(state) + "\n");
}

/** The last transition recorded, or null when none was (keepalived not started yet, or the file is unreadable). */
export function readNodeState(runDir: string): NodeStateFile | null {
  try {
    const r = NodeStateFileSchema.safeParse(JSON.parse(fs.readFileSync(runtimeFiles(runDir).state, "utf8")));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
