"use client";

import { useActionState } from "react";
import { loginAction, setupAction, type AuthFormState } from "@/lib/actions/auth";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";

const IDLE: AuthFormState = { status: "idle", message: "", stamp: 0 };

function Refusal({ state }: { state: AuthFormState }) {
  return (
    <p role="alert" data-testid="auth-error" className="min-h-5 text-sm text-bad">
      {state.status === "failed" ? state.message : ""}
    </p>
  );
}

export function LoginForm({ next }: { next: string }) {
  const [state, action, pending] = useActionState(loginAction, IDLE);
  return (
    <form action={action} className="space-y-3" aria-label="Log in">
      <input type="hidden" name="next" value={next} />
      <TextField label="User name" name="name" autoComplete="username" autoCapitalize="none" spellCheck={false} required defaultValue={state.name} key={`n${state.stamp}`} />
      <TextField label="Password" name="password" type="password" autoComplete="current-password" required />
      <Refusal state={state} />
      <Button type="submit" tone="primary" className="w-full" disabled={pending}>
        {pending ? "Logging in…" : "Log in"}
      </Button>
    </form>
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
