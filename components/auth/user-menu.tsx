import { logoutAction } from "@/lib/actions/auth";
import { buttonClass } from "@/components/ui/button";

export function UserMenu({ name, role }: { name: string; role: string }) {
  return (
    <form action={logoutAction} className="flex items-center gap-2">
      <span className="text-xs text-muted" data-testid="signed-in-as">
        <span className="font-medium text-fg">{name}</span> · {role}
      </span>
      <button type="submit" className={buttonClass("ghost", "sm")}>
        Log out
      </button>
    </form>
  );
}
