import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { projectRoot } from "../db/env.ts";
import { spawnPrivilegedDetached } from "../privileged/spawn.ts";
import { backendIp, backendName, backendNsName, LAB } from "./names.ts";
import { killNamespaceProcesses, namespacePids } from "./netns.ts";

/** Base directory for lab state; each lab gets `<base>/<name>/`. */
export function labStateBase(): string {
  return process.env.NATFARM_LAB_STATE_DIR || "/run/natfarm-lab";
}

export function labStateDir(name: string): string {
  return path.join(/*turbopackIgnore: true*/ labStateBase(), name);
}

/** Where scripts/lab-*.mjs live; overridable for installs that move them. */
export function labScriptPath(script: "lab-backend.mjs" | "lab-client.mjs"): string {
  return path.join(process.env.NATFARM_LAB_SCRIPTS_DIR || path.join(projectRoot(), "scripts"), script);
}

export interface LabState {
  name: string;
  backends: number;
  ports: number[];
  createdAt: string;
  ownerPid?: number;
}

export async function writeLabState(state: LabState): Promise<void> {
  const dir = labStateDir(state.name);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, "lab.json"), JSON.stringify(state, null, 2) + "\n");
}

export async function readLabState(name: string): Promise<LabState | null> {
  try {
    return JSON.parse(await fsp.readFile(path.join(labStateDir(name), "lab.json"), "utf8")) as LabState;
  } catch {
    return null;
  }
}

const pidFile = (name: string, index: number) => path.join(labStateDir(name), `${backendName(index)}.pid`);
const logFile = (name: string, index: number) => path.join(labStateDir(name), `${backendName(index)}.log`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else (non-root caller with sudo).
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function tail(file: string, bytes = 2000): Promise<string> {
  try {
    const text = await fsp.readFile(file, "utf8");
    return text.slice(-bytes).trim();
  } catch {
    return "";
  }
}

/**
 * Starts the backend server of backend `index` inside its namespace and waits
 * until it listens on every port (its pid file appears only then).
 */
export async function startBackendServer(name: string, index: number, ports: number[], readyTimeoutMs = 10_000): Promise<number> {
  await fsp.mkdir(labStateDir(name), { recursive: true });
  const pf = pidFile(name, index);
  const lf = logFile(name, index);
  await fsp.rm(pf, { force: true });
  const ns = backendNsName(name, index);
  const { pid } = spawnPrivilegedDetached(
    "ip",
    [
      "netns",
      "exec",
      ns,
      process.execPath,
      labScriptPath("lab-backend.mjs"),
      "--name",
      backendName(index),
      "--ip",
      backendIp(index),
      "--ports",
      ports.join(","),
      "--pid-file",
      pf,
    ],
    { logFile: lf },
  );
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(pf)) return Number((await fsp.readFile(pf, "utf8")).trim());
    if (!processAlive(pid)) {
      // A just-exited child stays a zombie until reaped; give the pid file a last chance.
      await sleep(20);
      if (fs.existsSync(pf)) return Number((await fsp.readFile(pf, "utf8")).trim());
      throw new Error(`backend server ${backendName(index)} in ${ns} exited before listening: ${await tail(lf)}`);
    }
    await sleep(20);
  }
  throw new Error(`backend server ${backendName(index)} in ${ns} not ready after ${readyTimeoutMs} ms: ${await tail(lf)}`);
}

/** Ends the backend's server (every process in its namespace); the addresses stay up. */
export async function stopBackendServer(name: string, index: number): Promise<void> {
  await killNamespaceProcesses(backendNsName(name, index));
  await fsp.rm(pidFile(name, index), { force: true });
}

export async function backendServerRunning(name: string, index: number): Promise<boolean> {
  return (await namespacePids(backendNsName(name, index))).length > 0;
}

export function defaultPorts(): number[] {
  return [...LAB.defaultPorts];
}
