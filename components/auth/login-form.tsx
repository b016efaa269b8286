"use client";

import { useActionState } from "react";
import { cancelLoginAction, loginAction, loginCodeAction, setupAction, type AuthFormState } from "@/lib/actions/auth";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";

const IDLE: AuthFormState = { status: "idle", message: "", stamp: 0 };

function Refusal({ state, notice }: { state: AuthFormState; notice?: string }) {
  return (
    <p role="alert" data-testid="auth-error" className="min-h-5 text-sm text-bad">
      {state.status === "failed" ? state.message : state.stamp === 0 ? (notice ?? "") : ""}
    </p>
  );
}

/** `notice`: why the login starts again (a code step that ended), until the next try. */
export function LoginForm({ next, notice }: { next: string; notice?: string }) {
  const [state, action, pending] = useActionState(loginAction, IDLE);
  return (
    <form action={action} className="space-y-3" aria-label="Log in">
      <input type="hidden" name="next" value={next} />
      <TextField label="User name" name="name" autoComplete="username" autoCapitalize="none" spellCheck={false} required defaultValue={state.name} key={`n${state.stamp}`} />
      <TextField label="Password" name="password" type="password" autoComplete="current-password" required />
      <Refusal state={state} notice={notice} />
      <Button type="submit" tone="primary" className="w-full" disabled={pending}>
        {pending ? "Logging in…" : "Log in"}
      </Button>
    </form>
  );
}

/** The login's second step (TOTP): one code, or back to the password. */
export function CodeForm({ next }: { next: string }) {
  const [state, action, pending] = useActionState(loginCodeAction, IDLE);
  return (
    <div className="space-y-3">
      <form action={action} className="space-y-3" aria-label="Two-factor code">
        <input type="hidden" name="next" value={next} />
        <TextField
          label="Code"
          name="code"
          inputMode="numeric"
          autoComplete="one-time-code"
          pattern="[0-9 ]{6,7}"
          maxLength={7}
          required
          autoFocus
          key={`c${state.stamp}`}
          hint="6 digits; a new one every 30 seconds. Each code works once."
        />
        <Refusal state={state} />
        <Button type="submit" tone="primary" className="w-full" disabled={pending}>
          {pending ? "Checking…" : "Verify code"}
        </Button>
      </form>
      <form action={cancelLoginAction}>
        <Button type="submit" tone="ghost" size="sm" className="w-full">
          Use another account
        </Button>
      </form>
    </div>
  );
}

export function SetupForm({ token }: { token: string }) {
  const [state, action, pending] = useActionState(setupAction, IDLE);
  return (
    <form action={action} className="space-y-3" aria-label="Create the first administrator">
      <input type="hidden" name="token" value={token} />
      <TextField label="Administrator's user name" name="name" autoComplete="username" autoCapitalize="none" spellCheck={false} required defaultValue={state.name} key={`n${state.stamp}`} hint="1–32 of a-z 0-9 . _ -" />
      <TextField label="Password" name="password" type="password" autoComplete="new-password" required minLength={10} hint="At least 10 characters." />
      <TextField label="Password again" name="confirm" type="password" autoComplete="new-password" required minLength={10} />
      <Refusal state={state} />
      <Button type="submit" tone="primary" className="w-full" disabled={pending}>
        {pending ? "Creating…" : "Create administrator and log in"}
      </Button>
    </form>
  );
}
