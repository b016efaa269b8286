import { farmAction } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/reapply (operator): puts the database's rules for the farm back into the kernel (after drift or a failed apply). */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string }> }) {
  return farmAction(req, ctx, {
    action: "reapply farm",
    permission: "operate",
    what: "re-applying a farm",
    body: NoBodySchema,
    bodyOptional: true,
    run: (s, name, _input, pre) => s.reapply(name, pre),
  });
}
