import type { InputHTMLAttributes, ReactNode, SelectHTMLAttributes } from "react";

/**
 * A labelled form control whose errors are announced: the message is linked
 * with aria-describedby and the control marked aria-invalid. Placeholders
 * are italic and say "e.g." so that an empty field never reads as filled in.
 */
export const inputClass =
  "h-9 w-full rounded-md border border-line bg-surface px-2.5 text-sm text-fg placeholder:text-muted placeholder:italic placeholder:font-sans aria-[invalid=true]:border-bad";

export function FieldError({ id, errors }: { id: string; errors?: string[] }) {
  return (
    <p id={id} className="mt-1 min-h-0 text-xs text-bad" aria-live="polite">
      {errors?.join(" ")}
    </p>
  );
}

export function TextField({
  label,
  name,
  errors,
  hint,
  id,
  className = "",
  ...props
}: InputHTMLAttributes<HTMLInputElement> & { label: ReactNode; name: string; errors?: string[]; hint?: ReactNode }) {
  const fid = id ?? `f-${name.replace(/\W/g, "-")}`;
  return (
    <div className={className}>
      <label htmlFor={fid} className="mb-1 block text-xs font-medium text-muted">
        {label}
      </label>
      <input
        id={fid}
        name={name}
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={`${fid}-error${hint ? ` ${fid}-hint` : ""}`}
        className={inputClass}
        {...props}
      />
      {hint && (
        <p id={`${fid}-hint`} className="mt-1 text-xs text-muted">
          {hint}
        </p>
      )}
      <FieldError id={`${fid}-error`} errors={errors} />
    </div>
  );
}

export function SelectField({
  label,
  name,
  errors,
  options,
  id,
  className = "",
  ...props
}: SelectHTMLAttributes<HTMLSelectElement> & { label: ReactNode; name: string; errors?: string[]; options: { value: string; label: string }[] }) {
  const fid = id ?? `f-${name.replace(/\W/g, "-")}`;
  return (
    <div className={className}>
      <label htmlFor={fid} className="mb-1 block text-xs font-medium text-muted">
        {label}
      </label>
      <select
        id={fid}
        name={name}
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={`${fid}-error`}
        className={inputClass}
        {...props}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldError id={`${fid}-error`} errors={errors} />
    </div>
  );
}
