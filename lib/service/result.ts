/**
 * What every service mutation answers. It never throws for anything an
 * operator can cause or fix (bad input, a farm gone, a refused apply, the
 * agent down): callers turn these into form states, API answers or exit
 * statuses through one mapper (./errors.ts).
 */
export type FieldErrors = Record<string, string[]>;

export type MutationResult =
  | {
      ok: true;
      farm: string;
      outcome: "applied" | "unchanged" | "pending" | "removed";
      message: string;
      /** Accepted, but worth the operator's attention (farmWarnings, the applier's warnings). */
      warnings?: string[];
      errors?: undefined;
    }
  | { ok: false; reason: "invalid"; message: string; errors: FieldErrors }
  | { ok: false; reason: "not-found"; message: string; errors?: undefined }
  | { ok: false; reason: "apply-failed"; farm: string; message: string; iptables: string; errors?: undefined }
  /**
   * The kernel could not be asked (the agent is not running). `saved`: the
   * database took the change before the agent went away, and it is pending;
   * otherwise nothing was changed at all.
   */
  | { ok: false; reason: "unavailable"; farm?: string; saved: boolean; message: string; errors?: undefined };
