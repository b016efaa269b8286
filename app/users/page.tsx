import type { Metadata } from "next";
import { AdminOnly } from "@/components/auth/admin-only";
import { TokenTable } from "@/components/auth/token-table";
import { AddUserForm, RemoveUserButton, ResetPasswordForm, RevokeAnyToken, RoleForm, UnlockButton } from "@/components/auth/users-admin";
import { Badge } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { LogTable, UtcTime, utcText } from "@/components/ui/log-table";
import { requireUser } from "@/lib/auth/next";
import { can } from "@/lib/auth/roles";
import { allTokens, usersOverview } from "@/lib/auth/user-admin";
import { consoleDb } from "@/lib/console/db";

export const metadata: Metadata = { title: "Users" };

/**
 * The console's users, for administrators. The front server answers other
 * roles 403 before this runs (lib/auth/gate.ts); the page checks again and
 * shows the refusal, and every action checks for itself.
 */
export default async function UsersPage() {
  const user = await requireUser();
  if (!can(user.role, "administer")) return <AdminOnly role={user.role} what="Managing users" />;
  const db = await consoleDb();
  const now = new Date();
  const [users, tokens] = await Promise.all([usersOverview(db, user, now), allTokens(db, user)]);
  return (
    <>
      <PageTitle title="Users" subtitle="Who may log in to this console, with which role; every user's API tokens. Every change here is in the audit log." />
      <div className="grid gap-5">
        <Card title="Add a user" titleId="add-user-title">
          <div className="p-4">
            <AddUserForm />
          </div>
        </Card>
        <Card title="Users" titleId="users-title" actions={<span className="text-xs text-muted">{users.length} user{users.length === 1 ? "" : "s"}</span>}>
          <LogTable
            label="Users"
            minWidth="min-w-[60rem]"
            columns={[{ label: "User" }, { label: "Role" }, { label: "Last login" }, { label: "Login" }, { label: "Two-factor" }, { label: "Sessions" }, { label: "Actions" }]}
            empty="No users."
            isEmpty={users.length === 0}
          >
            {users.map((u) => (
              <tr key={u.id} className="border-b border-line align-top last:border-0">
                <td className="px-4 py-2 font-medium">
                  {u.name}
                  {u.name === user.name && <span className="ml-1 text-xs text-muted">(you)</span>}
                </td>
                <td className="px-2 py-2">
                  <RoleForm name={u.name} role={u.role} />
                </td>
                <td className="px-2 py-2 whitespace-nowrap">{u.lastLoginAt ? <UtcTime at={u.lastLoginAt} /> : <span className="text-muted">never</span>}</td>
                <td className="px-2 py-2">
                  {u.lockedUntil ? (
                    <div className="flex items-center gap-2">
                      <Badge tone="bad" title={`until ${utcText(u.lockedUntil)}`}>
                        locked
                      </Badge>
                      <UnlockButton name={u.name} />
                    </div>
                  ) : (
                    <Badge tone="ok">open</Badge>
                  )}
                </td>
                <td className="px-2 py-2">{u.totp ? <Badge tone="ok">on</Badge> : <Badge>off</Badge>}</td>
                <td className="px-2 py-2 tabular-nums">{u.sessions}</td>
                <td className="space-y-2 px-4 py-2">
                  <RemoveUserButton name={u.name} self={u.name === user.name} />
                  <ResetPasswordForm name={u.name} />
                </td>
              </tr>
            ))}
          </LogTable>
        </Card>
        <Card title="API tokens of every user" titleId="all-tokens-title">
          <TokenTable tokens={tokens} label="API tokens of every user" empty="No API tokens." showUser now={now} revoke={(t) => <RevokeAnyToken id={t.id} name={t.name} user={t.user} />} />
        </Card>
      </div>
    </>
  );
}
