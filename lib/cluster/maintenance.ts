import fsp from "node:fs/promises";
import path from "node:path";

/**
 * A node's maintenance switch: a file in its runtime directory that
 * keepalived tracks (see keepalived.ts, `maintenanceFile`). "1": the node
 * goes to FAULT, drops the floating addresses and a backup takes over (its
 * master transition commits the connections conntrackd synced, so
 * established connections are kept); "0": the node leaves FAULT as a backup
 * and asks the master for a full resync. A file, not a keepalived command:
 * it survives keepalived's restarts and reloads, and the operator's choice is
 * visible where the node's other state lives.
 */
export const maintenanceFile = (runDir: string) => path.join(runDir, "maintenance");

export async function readMaintenance(runDir: string): Promise<boolean> {
  try {
    return Number((await fsp.readFile(maintenanceFile(runDir), "utf8")).trim() || "0") !== 0;
  } catch {
    return false;
  }
}

/** Written in place (keepalived watches the file itself with inotify and reads it on every close after a write). */
export async function writeMaintenance(runDir: string, on: boolean): Promise<void> {
  await fsp.writeFile(maintenanceFile(runDir), on ? "1\n" : "0\n");
}

/**
 * The cluster's state does not allow the change (the one node that could
 * take over is not ready): nothing was changed. Its own class, so the agent
 * carries it to the console and the CLI as what it is.
 */
export class ClusterRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterRefusedError";
  }
}
