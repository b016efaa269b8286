import { logoutAction } from "@/lib/actions/auth";
import { buttonClass } from "@/components/ui/button";
import { MenuLink } from "./menu-link";

/** The header's signed-in part: who, their account, the users page for administrators only, logout. */
export function UserMenu({ name, role }: { name: string; role: string }) {
  return (
    <nav aria-label="Account" className="flex items-center gap-1">
      <span className="mr-1 text-xs text-muted" data-testid="signed-in-as">
        <span className="font-medium text-fg">{name}</span> · {role}
      </span>
      <MenuLink href="/account">Account</MenuLink>
      {role === "admin" && <MenuLink href="/users">Users</MenuLink>}
      <form action={logoutAction}>
        <button type="submit" className={buttonClass("ghost", "sm")}>
          Log out
        </button>
      </form>
    </nav>
  );
}
