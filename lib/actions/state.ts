import type { FormState } from "../service/errors.ts";

/** What every server action hands back to useActionState (built by the service's error mapper). */
export type ActionState = FormState;

export const IDLE: ActionState = { status: "idle", message: "", errors: {}, stamp: 0 };
