import { setStaging } from "@/lib/api/staged";

/** PUT /api/v1/settings/staging (admin): staged changes on or off for the installation. */
export const dynamic = "force-dynamic";

export const PUT = (req: Request) => setStaging(req);
