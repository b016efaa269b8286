import { getBackup } from "@/lib/api/config";

/** GET /api/v1/config/backup (viewer): the whole configuration as a farm file. */
export const dynamic = "force-dynamic";

export const GET = () => getBackup();
