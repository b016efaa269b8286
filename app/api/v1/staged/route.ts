import { getStaged } from "@/lib/api/staged";

/** GET /api/v1/staged (any role): the staged changes and any savepoint. */
export const dynamic = "force-dynamic";

export const GET = (req: Request) => getStaged(req);
