import type { ReactNode } from "react";
import type { TokenInfo } from "@/lib/auth/tokens";
import { Badge } from "@/components/ui/badge";
import { LogTable, UtcTime } from "@/components/ui/log-table";

/** API tokens (never their secrets): the Account page's own, the Users page's every user's. */
export function TokenTable({ tokens, label, empty, showUser = false, revoke, now = new Date() }: { tokens: TokenInfo[]; label: string; empty: string; showUser?: boolean; revoke: (t: TokenInfo) => ReactNode; now?: Date }) {
  const columns = [{ label: "Name" }, ...(showUser ? [{ label: "User" }] : []), { label: "Role" }, { label: "Starts with" }, { label: "Created" }, { label: "Last used" }, { label: "Expires" }, { label: "State" }, { label: "Actions" }];
  return (
    <LogTable label={label} minWidth="min-w-[52rem]" columns={columns} empty={empty} isEmpty={tokens.length === 0}>
      {tokens.map((t) => {
        const state = t.revokedAt ? "revoked" : t.expiresAt && t.expiresAt <= now ? "expired" : "active";
        return (
          <tr key={t.id} className="border-b border-line align-middle last:border-0">
            <td className="px-4 py-2 font-medium">{t.name}</td>
            {showUser && <td className="px-2 py-2">{t.user}</td>}
            <td className="px-2 py-2">{t.role}</td>
            <td className="px-2 py-2 font-mono text-xs">{t.prefix}…</td>
            <td className="px-2 py-2 whitespace-nowrap">
              <UtcTime at={t.createdAt} />
            </td>
            <td className="px-2 py-2 whitespace-nowrap">{t.lastUsedAt ? <UtcTime at={t.lastUsedAt} /> : <span className="text-muted">never</span>}</td>
            <td className="px-2 py-2 whitespace-nowrap">{t.expiresAt ? <UtcTime at={t.expiresAt} /> : <span className="text-muted">never</span>}</td>
            <td className="px-2 py-2">
              <Badge tone={state === "active" ? "ok" : "neutral"}>{state}</Badge>
            </td>
            <td className="px-4 py-2">{state === "active" ? revoke(t) : null}</td>
          </tr>
        );
      })}
    </LogTable>
  );
}
