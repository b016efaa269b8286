import type { Metadata } from "next";
import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { AuthCard } from "@/components/auth/auth-card";
import { CodeForm, LoginForm } from "@/components/auth/login-form";
import { currentUser } from "@/lib/auth/next";
import { CHALLENGE_ENDED, challengeCookieName, challengeValid, cookieSecure } from "@/lib/auth/sessions";
import { consoleDb } from "@/lib/console/db";

export const metadata: Metadata = { title: "Log in" };

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  if (await currentUser()) redirect("/");
  const params = await searchParams;
  const raw = params.next;
  const next = typeof raw === "string" && /^\/(?![/\\])/.test(raw) ? raw : "/";
  // A half-login (the password was right, the TOTP code is due) asks for the code, also after a reload.
  const challenge = (await cookies()).get(challengeCookieName(cookieSecure()))?.value;
  if (await challengeValid(await consoleDb(), challenge)) {
    return (
      <AuthCard title="Two-factor code" subtitle="The password was right. Enter the 6-digit code your authenticator app shows for natfarm.">
        <CodeForm next={next} />
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Log in" subtitle="The console of this load balancer.">
      <LoginForm next={next} notice={params.again === "1" ? CHALLENGE_ENDED : undefined} />
    </AuthCard>
  );
}
