import fs from "node:fs";
import path from "node:path";
import type { Table } from "../netfilter/layout.ts";
import { formatTarget, type Target } from "../privileged/target.ts";
import type { HeldLock } from "../sys/flock.ts";

/**
 * The apply in progress, written beside the target's lock just before the
 * payload goes to the kernel and removed once it is in (or put back). A
 * journal found by the next holder of the lock means the apply before it died
 * mid-way (kill -9, OOM, a crash): the kernel then holds a prefix of its
 * make-before-break sections — consistent, but neither the old state nor the
 * new one — and the next apply, planning from the kernel as it is, finishes
 * the job. The journal is how that apply can tell the operator what happened.
 */
export interface InterruptedApply {
  pid: number;
  startedAt: string;
  farms: number;
  only: string[] | null;
  tables: Table[];
  message: string;
}

interface Entry {
  pid: number;
  startedAt: string;
  farms: number;
  only: string[] | null;
  tables: Table[];
}

export interface Journal {
  interrupted: InterruptedApply | null;
  write(entry: { farms: number; only: string[] | null; tables: Table[] }): void;
  /** `completed`: the kernel now holds what this apply wanted; otherwise it is as this apply found it. */
  finish(completed: boolean): void;
}

function describe(target: Target, e: Entry): string {
  const what = e.only ? `farm(s) ${e.only.join(", ")}` : `${e.farms} farm(s)`;
  return (
    `the previous apply to ${formatTarget(target)} (pid ${e.pid}, started ${e.startedAt}, ${what}) was interrupted before it finished; ` +
    `the kernel was left forwarding consistently (translations are written before the marks that use them and removed after) and this apply takes over from there`
  );
}

/** Opens the target's journal; the caller holds the target's lock, so no one else writes it meanwhile. */
export function beginJournal(target: Target, lock: HeldLock): Journal {
  const file = lock.file.replace(/\.lock$/, ".journal");
  let previous: string | null = null;
  try {
    previous = fs.readFileSync(file, "utf8");
  } catch {
    previous = null;
  }
  let interrupted: InterruptedApply | null = null;
  if (previous) {
    try {
      const e = JSON.parse(previous) as Entry;
      interrupted = { ...e, message: describe(target, e) };
    } catch {
      interrupted = { pid: 0, startedAt: "?", farms: 0, only: null, tables: [], message: describe(target, { pid: 0, startedAt: "?", farms: 0, only: null, tables: [] }) };
    }
  }
  let written = false;
  return {
    interrupted,
    write(entry) {
      const e: Entry = { pid: process.pid, startedAt: new Date().toISOString(), ...entry };
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `${JSON.stringify(e)}\n`);
      written = true;
    },
    finish(completed) {
      if (completed || (!previous && written)) fs.rmSync(file, { force: true });
      else if (previous && written) fs.writeFileSync(file, previous);
    },
  };
}
