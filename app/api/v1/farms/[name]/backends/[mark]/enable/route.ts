import { farmAction } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/backends/{mark}/enable (operator): back in service. */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string; mark: string }> }) {
  return farmAction(req, ctx, {
    action: "enable backend",
    permission: "operate",
    what: "putting a backend back in service",
    backend: true,
    body: NoBodySchema,
    bodyOptional: true,
    run: (s, name, { mark }, pre) => s.setMaintenance(name, mark, "off", pre),
  });
}
