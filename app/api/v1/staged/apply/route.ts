import { applyStaged } from "@/lib/api/staged";

/** POST /api/v1/staged/apply (operator): every staged change in one kernel transaction. */
export const dynamic = "force-dynamic";

export const POST = (req: Request) => applyStaged(req);
