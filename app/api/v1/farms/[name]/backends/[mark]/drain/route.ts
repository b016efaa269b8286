import { farmAction } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/backends/{mark}/drain (operator): no new connections, open ones continue. */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string; mark: string }> }) {
  return farmAction(req, ctx, {
    action: "drain backend",
    permission: "operate",
    what: "draining a backend",
    backend: true,
    body: NoBodySchema,
    bodyOptional: true,
    run: (s, name, { mark }, pre) => s.setMaintenance(name, mark, "drain", pre),
  });
}
