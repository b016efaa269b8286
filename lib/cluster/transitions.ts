import { z } from "zod";

/**
 * What a node does when keepalived moves it between VRRP states (pure), after
 * conntrack-tools' primary-backup.sh:
 *
 * - master: commit the external cache (the entries the old master sent) into
 *   the kernel, so established connections find their translation at once;
 *   flush both caches; resync the internal cache from the kernel (now the
 *   truth); send a bulk update to the backups.
 * - backup: make sure conntrackd runs (start it, clearing a stale lock, when
 *   `-s` gets no answer); shorten the kernel's entries (they are the
 *   master's now, and would otherwise capture packets if this node is master
 *   again later with stale state); ask the master for a full resync — this is
 *   how a node that comes back fills its table, and why it must not take over
 *   before that (see keepalived.ts, nopreempt).
 * - fault: shorten the kernel's entries.
 * - stop: nothing (keepalived is going away; the addresses go with it).
 */
export const VRRP_STATES = ["master", "backup", "fault", "stop"] as const;
export type VrrpState = (typeof VRRP_STATES)[number];
export const VrrpStateSchema = z.enum(VRRP_STATES, { error: (iss) => `state must be one of ${VRRP_STATES.join(", ")}, got ${JSON.stringify(iss.input)}` });

export interface ConntrackdStep {
  /** conntrackd's arguments after `-C <config>`. */
  args: string[];
  why: string;
  /** When this step fails, conntrackd is not running: start it (after removing its stale lock), then go on. */
  startWhenDown?: boolean;
}

export function conntrackdSteps(state: VrrpState): ConntrackdStep[] {
  switch (state) {
    case "master":
      return [
        { args: ["-c"], why: "commit the external cache into the kernel" },
        { args: ["-f"], why: "flush the internal and external caches" },
        { args: ["-R"], why: "resync the internal cache with the kernel" },
        { args: ["-B"], why: "send a bulk update to the backups" },
      ];
    case "backup":
      return [
        { args: ["-s"], why: "check that conntrackd runs", startWhenDown: true },
        { args: ["-t"], why: "shorten the kernel's entries" },
        { args: ["-n"], why: "request a resync from the master" },
      ];
    case "fault":
      return [{ args: ["-t"], why: "shorten the kernel's entries" }];
    case "stop":
      return [];
  }
}
