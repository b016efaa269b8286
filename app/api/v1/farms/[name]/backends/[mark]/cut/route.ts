import { farmAction } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/backends/{mark}/cut (operator): no new connections, and its open ones end (conntrack entries deleted). */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string; mark: string }> }) {
  return farmAction(req, ctx, {
    action: "cut backend",
    permission: "operate",
    what: "cutting a backend's connections",
    backend: true,
    body: NoBodySchema,
    bodyOptional: true,
    run: (s, name, { mark }, pre) => s.setMaintenance(name, mark, "cut", pre),
  });
}
