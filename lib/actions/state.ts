/**
 * What every server action hands back to useActionState. `stamp` changes on
 * each submission so the client can toast once per result; `values` puts a
 * refused form back as the operator typed it (React resets forms after an action).
 */
export interface ActionState {
  status: "idle" | "ok" | "invalid" | "failed";
  message: string;
  errors: Record<string, string[]>;
  values?: Record<string, string>;
  /** Accepted, but worth the operator's attention (also appended to `message`, which every toast shows). */
  warnings?: string[];
  /** The iptables text of a refused apply, shown verbatim. */
  iptables?: string;
  farm?: string;
  stamp: number;
}

export const IDLE: ActionState = { status: "idle", message: "", errors: {}, stamp: 0 };
