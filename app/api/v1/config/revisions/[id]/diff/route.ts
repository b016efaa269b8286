import { diffRevision } from "@/lib/api/config";

/** GET /api/v1/config/revisions/{id}/diff?to= (viewer): farms and rules that differ from this revision to another (or now). */
export const dynamic = "force-dynamic";

export const GET = (req: Request, ctx: { params: Promise<Record<string, string>> }) => diffRevision(req, ctx);
