"use client";

import {
  cancelTotpAction,
  changePasswordAction,
  confirmTotpAction,
  createTokenAction,
  disableTotpAction,
  revokeOwnTokenAction,
  startTotpAction,
  type TokenState,
} from "@/lib/actions/account";
import { IDLE } from "@/lib/actions/state";
import type { Role } from "@/lib/auth/roles";
import { CopyButton } from "@/components/farm/copy-button";
import { Button } from "@/components/ui/button";
import { ConfirmDialog } from "@/components/ui/confirm-dialog";
import { SelectField, TextField } from "@/components/ui/field";
import { errorsOf, FormMessage, useAuthForm } from "./form-bits";

export function PasswordForm() {
  const { state, formAction, pending } = useAuthForm(changePasswordAction);
  return (
    // A new key after a success empties the fields.
    <form action={formAction} className="grid max-w-md gap-3" aria-label="Change password" key={state.status === "ok" ? state.stamp : "form"}>
      <TextField id="pw-current" label="Current password" name="current" type="password" autoComplete="current-password" required errors={errorsOf(state, "current")} />
      <TextField id="pw-next" label="New password" name="next" type="password" autoComplete="new-password" required minLength={10} hint="At least 10 characters. Your other sessions end." errors={errorsOf(state, "next")} />
      <TextField id="pw-confirm" label="New password again" name="confirm" type="password" autoComplete="new-password" required minLength={10} errors={errorsOf(state, "confirm")} />
      <FormMessage state={state} testId="password-result" />
      <div>
        <Button type="submit" tone="primary" disabled={pending}>
          {pending ? "Changing…" : "Change password"}
        </Button>
      </div>
    </form>
  );
}

const EXPIRY_OPTIONS = [
  { value: "30d", label: "30 days" },
  { value: "7d", label: "7 days" },
  { value: "1d", label: "1 day" },
  { value: "90d", label: "90 days" },
  { value: "365d", label: "1 year" },
  { value: "never", label: "Never" },
];

export function TokenForm({ roles }: { roles: Role[] }) {
  const { state, formAction, pending } = useAuthForm<TokenState>(createTokenAction, IDLE);
  return (
    <div className="space-y-3">
      <form action={formAction} className="grid gap-3 sm:grid-cols-[1fr_10rem_10rem_auto] sm:items-start" aria-label="New API token">
        <TextField id="token-name" label="Name" name="name" required maxLength={64} placeholder="e.g. ci-deploy" errors={errorsOf(state, "name")} />
        <SelectField id="token-role" label="Role" name="role" defaultValue={roles[0]} options={roles.map((r) => ({ value: r, label: r }))} errors={errorsOf(state, "role")} />
        <SelectField id="token-expires" label="Expires" name="expires" defaultValue="30d" options={EXPIRY_OPTIONS} errors={errorsOf(state, "expires")} />
        <div className="sm:pt-5">
          <Button type="submit" tone="primary" disabled={pending}>
            {pending ? "Creating…" : "Create token"}
          </Button>
        </div>
      </form>
      {state.status === "ok" && state.secret ? (
        <div role="status" className="rounded-md border border-warn/40 bg-warn-soft p-3 text-sm">
          <p className="mb-2 font-medium">Secret of &ldquo;{state.tokenName}&rdquo;: copy it now. It is not stored and will not be shown again.</p>
          <div className="flex flex-wrap items-center gap-2">
            <code data-testid="token-secret" className="rounded bg-surface px-2 py-1 font-mono text-xs break-all">
              {state.secret}
            </code>
            <CopyButton text={state.secret} label="Copy the token's secret" />
          </div>
        </div>
      ) : (
        <FormMessage state={state} />
      )}
    </div>
  );
}

export function RevokeOwnToken({ id, name }: { id: number; name: string }) {
  return (
    <ConfirmDialog
      trigger="Revoke"
      triggerSize="sm"
      triggerTone="danger"
      triggerLabel={`Revoke token ${name}`}
      title={`Revoke token "${name}"?`}
      confirm="Revoke token"
      confirmTone="danger"
      action={revokeOwnTokenAction}
      fields={{ id: String(id) }}
    >
      <p>Requests with this token get 401 from now on. This cannot be undone.</p>
    </ConfirmDialog>
  );
}

export function TotpStart() {
  const { state, formAction, pending } = useAuthForm(startTotpAction);
  return (
    <form action={formAction} aria-label="Set up two-factor login" className="space-y-2">
      <Button type="submit" tone="primary" disabled={pending}>
        {pending ? "Preparing…" : "Set up two-factor login"}
      </Button>
      <FormMessage state={state} />
    </form>
  );
}

export function TotpConfirm() {
  const { state, formAction, pending } = useAuthForm(confirmTotpAction);
  const cancel = useAuthForm(cancelTotpAction);
  return (
    <div className="space-y-2">
      <form action={formAction} aria-label="Confirm two-factor login" className="flex flex-wrap items-start gap-3">
        <TextField id="totp-confirm-code" label="Code from the app" name="code" inputMode="numeric" autoComplete="one-time-code" required maxLength={7} className="w-40" errors={errorsOf(state, "code")} />
        <div className="pt-5">
          <Button type="submit" tone="primary" disabled={pending}>
            {pending ? "Checking…" : "Turn on"}
          </Button>
        </div>
      </form>
      <FormMessage state={state} testId="totp-result" />
      <form action={cancel.formAction}>
        <Button type="submit" tone="ghost" size="sm" disabled={cancel.pending}>
          Cancel enrolment
        </Button>
      </form>
    </div>
  );
}

export function TotpDisable() {
  const { state, formAction, pending } = useAuthForm(disableTotpAction);
  return (
    <form action={formAction} aria-label="Turn two-factor login off" className="grid max-w-md gap-3">
      <TextField id="totp-off-password" label="Password" name="password" type="password" autoComplete="current-password" required errors={errorsOf(state, "password")} />
      <TextField id="totp-off-code" label="Current code" name="code" inputMode="numeric" autoComplete="one-time-code" required maxLength={7} errors={errorsOf(state, "code")} />
      <FormMessage state={state} />
      <div>
        <Button type="submit" tone="danger" disabled={pending}>
          {pending ? "Checking…" : "Turn two-factor login off"}
        </Button>
      </div>
    </form>
  );
}
