import { z } from "zod";
import { MARK_RANGES, parseMark } from "../farms/marks.ts";
import { FARM_NAME_MAX, FARM_NAME_PATTERN } from "../farms/schema.ts";
import { formRefusal, objectFieldErrors, type FormState } from "../service/errors.ts";
import { formValues } from "./form-data.ts";

/**
 * What every server action does with its FormData before anything else: a
 * safeParse of the fields it needs. A form that lacks one or holds garbage (a
 * page older than the code, a hand-made POST) gets `{ status: "invalid",
 * message, errors }` back (the next-learn dashboard's shape), keyed by field,
 * and nothing is changed; it never throws (a thrown ZodError is a 500 and a
 * stack trace in the server log). Plain module: vitest calls it directly.
 */

/** The farm a form is about: a name the schema allows (a longer or odder one cannot exist). */
export const FarmField = z
  .string({ error: "the form does not say which farm it is about (its farm field is missing)" })
  .trim()
  .min(1, { error: "the form does not say which farm it is about (its farm field is empty)" })
  .max(FARM_NAME_MAX, { error: `no farm has a name that long (at most ${FARM_NAME_MAX} characters)` })
  .regex(FARM_NAME_PATTERN, { error: "no farm has a name like that (letters, digits, _ and - only)" });

/** A backend is addressed by its mark, "0x20c" as the page writes it. */
export const MarkField = z.unknown().transform((value, ctx) => {
  const mark = parseMark(typeof value === "string" ? value : undefined);
  if (mark === null) {
    ctx.addIssue({
      code: "custom",
      message:
        value === undefined
          ? "the form does not say which backend it is about (its mark field is missing)"
          : `unknown backend: its mark must be in ${MARK_RANGES}, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return mark;
});

/**
 * The farms a bulk action is about, one name a line (the list sends what
 * was selected): each must be a name the schema allows, at most 10,000.
 */
export const FarmListField = z
  .string({ error: "the form does not say which farms it is about (its farms field is missing)" })
  .transform((s) => s.split("\n").map((x) => x.trim()).filter(Boolean))
  .pipe(
    z
      .array(FarmField)
      .min(1, { error: "no farm was selected" })
      .max(10_000, { error: "at most 10,000 farms at once" }),
  );

export const choice = <const T extends readonly [string, ...string[]]>(field: string, values: T) =>
  z.enum(values, {
    error: (iss) => (iss.input === undefined ? `the form has no ${field} field` : `${field} must be ${values.map((v) => `"${v}"`).join(" or ")}, got ${JSON.stringify(iss.input)}`),
  });

export type Parsed<T> = { ok: true; data: T } | { ok: false; state: FormState };

/** The fields of `schema`'s shape, read from the form (a missing field is undefined) and parsed. */
export function parseForm<S extends z.ZodObject>(schema: S, form: unknown): Parsed<z.output<S>> {
  if (!(form instanceof FormData)) {
    const message = "The request carried no form: nothing was changed.";
    return { ok: false, state: formRefusal({}, message, { alsoForm: true }) };
  }
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = form.get(key);
    input[key] = v === null ? undefined : v;
  }
  const r = schema.safeParse(input);
  if (r.success) return { ok: true, data: r.data };
  const errors = objectFieldErrors(r.error);
  const message = `The request was refused, nothing was changed: ${Object.values(errors).flat().join("; ")}.`;
  // Under the field, and under _form too: the forms show _form (most have no input for farm or mark).
  return { ok: false, state: formRefusal(errors, message, { values: formValues(form), alsoForm: true }) };
}
