/** Input that does not pass the shared schema: nothing was applied. */
export class FarmValidationError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid farms:\n  ${issues.join("\n  ")}`);
    this.name = "FarmValidationError";
  }
}

/** iptables refused a change. The kernel kept (or was put back to) its previous rules. */
export class ApplyError extends Error {
  constructor(
    readonly iptablesMessage: string,
    readonly rolledBack: "nothing-committed" | "rolled-back" | "rollback-failed",
    readonly payload: string,
    readonly rollbackMessage?: string,
  ) {
    const after =
      rolledBack === "rollback-failed"
        ? ` — and restoring the previous rules failed too: ${rollbackMessage}`
        : "; the previous rules are in place";
    super(`iptables-restore rejected the change: ${iptablesMessage.trim()}${after}`);
    this.name = "ApplyError";
  }
}
