import { getRevisionConfig } from "@/lib/api/config";

/** GET /api/v1/config/revisions/{id}/farms (viewer): the revision's whole configuration as a farm file. */
export const dynamic = "force-dynamic";

export const GET = (_req: Request, ctx: { params: Promise<Record<string, string>> }) => getRevisionConfig(ctx);
