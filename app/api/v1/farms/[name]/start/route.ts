import { farmAction } from "@/lib/api/route";
import { NoBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/start (operator): the farm's status becomes "up" and its rules follow. */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string }> }) {
  return farmAction(req, ctx, {
    action: "start farm",
    permission: "operate",
    what: "starting or stopping a farm",
    body: NoBodySchema,
    bodyOptional: true,
    run: (s, name, _input, pre) => s.setStatus(name, "up", pre),
  });
}
