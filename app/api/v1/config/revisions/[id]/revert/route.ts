import { revertRevision } from "@/lib/api/config";

/** POST /api/v1/config/revisions/{id}/revert (admin): back to that configuration, as a new revision, applied. */
export const dynamic = "force-dynamic";

export const POST = (req: Request, ctx: { params: Promise<Record<string, string>> }) => revertRevision(req, ctx);
