import type { Metadata } from "next";
import { AuthCard } from "@/components/auth/auth-card";
import { SetupForm } from "@/components/auth/login-form";
import { consoleDb } from "@/lib/console/db";
import { SETUP_REFUSED, setupTokenValid } from "@/lib/auth/setup";

export const metadata: Metadata = { title: "First administrator" };

export default async function SetupPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const raw = (await searchParams).token;
  const token = typeof raw === "string" ? raw : "";
  const valid = await setupTokenValid(await consoleDb(), token);
  return (
    <AuthCard title="Create the first administrator" subtitle={valid ? "This link works once. The administrator can add the other users." : undefined}>
      {valid ? <SetupForm token={token} /> : <p role="alert" className="text-sm text-bad">{SETUP_REFUSED}</p>}
    </AuthCard>
  );
}
