import { confirmStaged } from "@/lib/api/staged";

/** POST /api/v1/staged/confirm (operator): keep an apply made under a savepoint. */
export const dynamic = "force-dynamic";

export const POST = (req: Request) => confirmStaged(req);
