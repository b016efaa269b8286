import Link from "next/link";
import { logoutAction } from "@/lib/actions/auth";
import { buttonClass } from "@/components/ui/button";

/** The header's signed-in part: who, their account, the users page for administrators only, logout. */
export function UserMenu({ name, role }: { name: string; role: string }) {
  return (
    <nav aria-label="Account" className="flex items-center gap-1">
      <span className="mr-1 text-xs text-muted" data-testid="signed-in-as">
        <span className="font-medium text-fg">{name}</span> · {role}
      </span>
      <Link href="/account" className={buttonClass("ghost", "sm")}>
        Account
      </Link>
      {role === "admin" && (
        <Link href="/users" className={buttonClass("ghost", "sm")}>
          Users
        </Link>
      )}
      <form action={logoutAction}>
        <button type="submit" className={buttonClass("ghost", "sm")}>
          Log out
        </button>
      </form>
    </nav>
  );
}
