import { FarmValidationError, validateFarms } from "../applier/index.ts";
import { FarmListSchema, type Farm, type FarmInput } from "../farms/schema.ts";
import { NOT_SAVED, setFieldErrors } from "./errors.ts";
import type { FieldErrors } from "./result.ts";

export type SetCheck = { ok: true; farms: Farm[] } | { ok: false; errors: FieldErrors; message: string };

/**
 * Validates the farm set in which `focus` is the farm being changed. The
 * focus farm goes last, so that cross-farm conflicts (duplicate name, VIP:port
 * overlap, duplicate mark) are reported on it, under its own field names.
 */
export function validateSet(others: FarmInput[], focus: FarmInput): SetCheck {
  const list = [...others, focus];
  const parsed = FarmListSchema.safeParse(list);
  if (parsed.success) return { ok: true, farms: parsed.data };
  return { ok: false, errors: setFieldErrors(parsed.error, list, others.length), message: NOT_SAVED };
}

/**
 * validateSet for a one-farm change in a large set, through the applier's own
 * validation: unchanged farms (the set cache keeps their objects) are not
 * parsed again, only the focus farm and the checks across farms run. Any
 * problem goes to validateSet, whose report is the reference (same messages,
 * same keys).
 */
export function validateSetFast(others: FarmInput[], focus: FarmInput): SetCheck {
  try {
    return { ok: true, farms: validateFarms([...others, focus]) };
  } catch (e) {
    if (e instanceof FarmValidationError) return validateSet(others, focus);
    throw e;
  }
}
