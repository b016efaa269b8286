import { farmAction } from "@/lib/api/route";
import { ModeBodySchema } from "@/lib/api/schemas";

/** POST /api/v1/farms/{name}/mode {"mode": "nat"|"dnat"} (operator): switches the farm's NAT type, as the farm page's toggle. */
export const dynamic = "force-dynamic";

export function POST(req: Request, ctx: { params: Promise<{ name: string }> }) {
  return farmAction(req, ctx, {
    action: "set farm mode",
    permission: "operate",
    what: "switching a farm between NAT and DNAT",
    body: ModeBodySchema,
    run: (s, name, { body }, pre) => s.setMode(name, body.mode, pre),
  });
}
