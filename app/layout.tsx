import type { Metadata } from "next";
import type { ReactNode } from "react";
import { AgentBanner } from "@/components/agent-banner";
import { StagedBanner } from "@/components/staged-banner";
import { savepointSeconds } from "@/lib/service/staging";
import { Header } from "@/components/header";
import { Providers, THEME_BOOT_SCRIPT } from "@/components/providers";
import { consoleEnv } from "@/lib/console/env";
import { agentReach, farmService } from "@/lib/console/farm-service";
import { RoleProvider } from "@/components/auth/role";
import { UserMenu } from "@/components/auth/user-menu";
import { SessionWatch } from "@/components/auth/session-watch";
import { currentUser } from "@/lib/auth/next";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "natfarm", template: "%s · natfarm" },
  description: "Layer-4 NAT load-balancing farms on Linux netfilter",
  // public/favicon.ico: the one icon path the front server serves without a login (the login page shows it too).
  icons: { icon: "/favicon.ico" },
};

// Every page shows the database and the kernel as they are now.
export const dynamic = "force-dynamic";

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUser();
  if (!user) {
    // The login and setup pages (every other page sends a visitor without a session to /login).
    return (
      <Document>
        <Providers>
          <main id="main" className="mx-auto max-w-7xl px-4 py-6 sm:px-6">
            <RoleProvider role={null}>{children}</RoleProvider>
          </main>
        </Providers>
      </Document>
    );
  }
  const { target } = consoleEnv();
  // One round trip to the agent (bounded): the banner is there from the first paint.
  const [reach, staged] = await Promise.all([agentReach(), (await farmService()).staging({ live: true, session: user.sessionId, waitMs: 250 })]);
  return (
    <Document>
      <a href="#main" className="sr-only z-50 rounded-md bg-accent px-3 py-2 text-accent-fg focus:not-sr-only focus:fixed focus:top-2 focus:left-2">
        Skip to content
      </a>
      <Providers>
        <Header target={target} user={<UserMenu name={user.name} role={user.role} />} />
        <AgentBanner initial={reach} />
        <StagedBanner view={staged} role={user.role} seconds={savepointSeconds()} />
        {target.kind === "none" && (
          <div role="status" className="border-b border-warn/40 bg-warn-soft">
            <p className="mx-auto max-w-7xl px-4 py-2 text-sm text-warn sm:px-6">
              <strong className="font-semibold">Applying is disabled.</strong> {target.reason}
            </p>
          </div>
        )}
        <main id="main" className="mx-auto max-w-7xl px-4 py-6 sm:px-6">
          <RoleProvider role={user.role}>{children}</RoleProvider>
          <SessionWatch />
        </main>
      </Providers>
    </Document>
  );
}

/** The page around everything: the theme set before the first paint. */
function Document({ children }: { children: ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: THEME_BOOT_SCRIPT }} />
      </head>
      <body className="min-h-screen bg-bg font-sans text-fg antialiased">{children}</body>
    </html>
  );
}
