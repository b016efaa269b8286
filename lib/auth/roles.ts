/**
 * Roles and what they may do. Every check is made on the server (the front
 * server admits only logged-in requests; pages, server actions and API
 * routes check the role); the UI only hides what the role may not use.
 *
 *   viewer    reads everything
 *   operator  also changes backends (add, edit, weight, drain, cut, back in
 *             service), starts and stops farms, toggles NAT/DNAT, re-applies,
 *             runs lab traffic
 *   admin     also creates, edits and deletes farms and manages users
 */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export type Permission = "read" | "operate" | "administer";

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const NEEDS: Record<Permission, Role> = { read: "viewer", operate: "operator", administer: "admin" };

export function isRole(v: unknown): v is Role {
  return typeof v === "string" && (ROLES as readonly string[]).includes(v);
}

export function can(role: string | undefined | null, permission: Permission): boolean {
  if (!isRole(role)) return false;
  return RANK[role] >= RANK[NEEDS[permission]];
}

export function requiredRole(permission: Permission): Role {
  return NEEDS[permission];
}

/** The one sentence a refused request carries (403 for the API, the form's message for actions). */
export function refusalMessage(role: string | undefined, permission: Permission, what: string): string {
  return `Refused: ${what} needs the ${NEEDS[permission]} role${NEEDS[permission] === "admin" ? "" : " or higher"}; you are signed in as ${role ?? "nobody"}. Nothing was changed.`;
}
