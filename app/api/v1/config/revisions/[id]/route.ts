import { getRevision } from "@/lib/api/config";

/** GET /api/v1/config/revisions/{id} (viewer): one revision with each changed farm before and after. */
export const dynamic = "force-dynamic";

export const GET = (_req: Request, ctx: { params: Promise<Record<string, string>> }) => getRevision(ctx);
