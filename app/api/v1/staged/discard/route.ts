import { discardStaged } from "@/lib/api/staged";

/** POST /api/v1/staged/discard (operator): back to what the kernel holds. */
export const dynamic = "force-dynamic";

export const POST = (req: Request) => discardStaged(req);
