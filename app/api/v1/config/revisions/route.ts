import { listRevisions } from "@/lib/api/config";

/** GET /api/v1/config/revisions?limit=&before= (viewer): the configuration history, newest first. */
export const dynamic = "force-dynamic";

export const GET = (req: Request) => listRevisions(req);
