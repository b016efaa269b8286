import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { AuthCard } from "@/components/auth/auth-card";
import { LoginForm } from "@/components/auth/login-form";
import { currentUser } from "@/lib/auth/next";

export const metadata: Metadata = { title: "Log in" };

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  if (await currentUser()) redirect("/");
  const raw = (await searchParams).next;
  const next = typeof raw === "string" && /^\/(?![/\\])/.test(raw) ? raw : "/";
  return (
    <AuthCard title="Log in" subtitle="The console of this load balancer.">
      <LoginForm next={next} />
    </AuthCard>
  );
}
