import type { PrismaClient } from "../generated/prisma/client.ts";

/**
 * The audit log: one row per login, failed login (and whether the name or
 * address was locked), logout, first setup, refused request, and user or
 * token change. Rows are only ever added. Writing one never makes the
 * audited operation fail: a write error is reported on stderr.
 */
export interface AuditInput {
  actor: string | null;
  via: "session" | "token" | "cli" | "anonymous";
  address?: string | null;
  action: string;
  farm?: string | null;
  result: "ok" | "failed" | "invalid" | "locked" | "refused";
  detail?: string | null;
  at?: Date;
}

export async function audit(db: PrismaClient, e: AuditInput): Promise<void> {
  try {
    await db.auditEntry.create({
      data: { at: e.at ?? new Date(), actor: e.actor, via: e.via, address: e.address ?? null, action: e.action, farm: e.farm ?? null, result: e.result, detail: e.detail?.slice(0, 2000) ?? null },
    });
  } catch (err) {
    process.stderr.write(`natfarm: audit entry not written (${e.action} by ${e.actor ?? "nobody"}): ${(err as Error).message}\n`);
  }
}

export function recentAudit(db: PrismaClient, limit = 200) {
  return db.auditEntry.findMany({ orderBy: { id: "desc" }, take: limit });
}
