import { restoreBackup } from "@/lib/api/config";

/** POST /api/v1/config/restore (admin): a backup becomes the whole configuration, as a new revision, applied. */
export const dynamic = "force-dynamic";

export const POST = (req: Request) => restoreBackup(req);
