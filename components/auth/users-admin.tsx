"use client";

import { addUserAction, removeUserAction, resetPasswordAction, revokeTokenAction, setRoleAction, unlockUserAction } from "@/lib/actions/users";
import { ROLES, type Role } from "@/lib/auth/roles";
import { Button } from "@/components/ui/button";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { inputClass, SelectField, TextField } from "@/components/ui/field";
import { errorsOf, FormMessage, useAuthForm } from "./form-bits";

const ROLE_OPTIONS = ROLES.map((r) => ({ value: r, label: r }));

export function AddUserForm() {
  const { state, formAction, pending } = useAuthForm(addUserAction);
  return (
    <form action={formAction} aria-label="Add user" className="space-y-2" key={state.status === "ok" ? state.stamp : "form"}>
      <div className="grid gap-3 sm:grid-cols-[1fr_10rem_1fr_auto] sm:items-start">
        <TextField id="new-user-name" label="User name" name="name" required maxLength={32} autoCapitalize="none" spellCheck={false} hint="1–32 of a-z 0-9 . _ -" errors={errorsOf(state, "name")} />
        <SelectField id="new-user-role" label="Role" name="role" defaultValue="viewer" options={ROLE_OPTIONS} errors={errorsOf(state, "role")} />
        <TextField id="new-user-password" label="Initial password" name="password" type="password" autoComplete="new-password" required minLength={10} hint="At least 10 characters; tell it to them privately." errors={errorsOf(state, "password")} />
        <div className="sm:pt-5">
          <Button type="submit" tone="primary" disabled={pending}>
            {pending ? "Adding…" : "Add user"}
          </Button>
        </div>
      </div>
      <FormMessage state={state} testId="add-user-result" />
    </form>
  );
}

export function RoleForm({ name, role }: { name: string; role: Role }) {
  const { state, formAction, pending } = useAuthForm(setRoleAction);
  return (
    <form action={formAction} aria-label={`Role of ${name}`} className="flex items-center gap-1.5">
      <input type="hidden" name="name" value={name} />
      <label htmlFor={`role-${name}`} className="sr-only">
        Role of {name}
      </label>
      <select id={`role-${name}`} name="role" defaultValue={role} className={`${inputClass} h-8 w-28`} key={`${role}-${state.stamp}`}>
        {ROLE_OPTIONS.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <Button type="submit" size="sm" disabled={pending} aria-label={`Set role of ${name}`}>
        Set role
      </Button>
      {state.status === "invalid" && (
        <span role="alert" className="text-xs text-bad">
          {state.errors._form?.join(" ") ?? state.message}
        </span>
      )}
    </form>
  );
}

export function UnlockButton({ name }: { name: string }) {
  const { formAction, pending } = useAuthForm(unlockUserAction);
  return (
    <form action={formAction}>
      <input type="hidden" name="name" value={name} />
      <Button type="submit" size="sm" disabled={pending} aria-label={`Unlock ${name}`}>
        Unlock
      </Button>
    </form>
  );
}

export function ResetPasswordForm({ name }: { name: string }) {
  const { state, formAction, pending } = useAuthForm(resetPasswordAction);
  return (
    <details className="group">
      <summary className="cursor-pointer text-xs font-medium text-accent">Reset password</summary>
      <form action={formAction} aria-label={`Reset the password of ${name}`} className="mt-2 flex flex-wrap items-start gap-2" key={state.status === "ok" ? state.stamp : "form"}>
        <input type="hidden" name="name" value={name} />
        <TextField id={`reset-${name}`} label={`New password for ${name}`} name="password" type="password" autoComplete="new-password" required minLength={10} className="w-56" errors={errorsOf(state, "password")} />
        <div className="pt-5">
          <Button type="submit" size="sm" disabled={pending}>
            Set password
          </Button>
        </div>
        {state.status === "invalid" && (
          <p role="alert" className="w-full text-xs text-bad">
            {state.errors._form?.join(" ") ?? state.message}
          </p>
        )}
      </form>
    </details>
  );
}

export function RemoveUserButton({ name, self }: { name: string; self: boolean }) {
  return (
    <ConfirmDialog
      trigger="Remove"
      triggerSize="sm"
      triggerTone="danger"
      triggerLabel={`Remove user ${name}`}
      title={self ? "Remove yourself?" : `Remove user ${name}?`}
      confirm={self ? "Remove myself and log out" : "Remove user"}
      confirmTone="danger"
      action={removeUserAction}
      fields={self ? { name, confirmSelf: "yes" } : { name }}
    >
      {self ? (
        <p>
          <strong>This is you.</strong> Your account, its sessions and API tokens are deleted and you are logged out at once. Another administrator must exist.
        </p>
      ) : (
        <p>The user, their sessions and their API tokens are deleted. Their entries in the audit log stay.</p>
      )}
    </ConfirmDialog>
  );
}

export function RevokeAnyToken({ id, name, user }: { id: number; name: string; user: string }) {
  return (
    <ConfirmDialog
      trigger="Revoke"
      triggerSize="sm"
      triggerTone="danger"
      triggerLabel={`Revoke token ${name} of ${user}`}
      title={`Revoke token "${name}" of ${user}?`}
      confirm="Revoke token"
      confirmTone="danger"
      action={revokeTokenAction}
      fields={{ id: String(id) }}
    >
      <p>Requests with this token get 401 from now on. This cannot be undone.</p>
    </ConfirmDialog>
  );
}
