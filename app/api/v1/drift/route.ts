import { read, json } from "@/lib/api/route";
import { driftOverview } from "@/lib/console/farm-service";

/** GET /api/v1/drift: which farms' live rules differ from what natfarm wrote. */
export const dynamic = "force-dynamic";

export function GET() {
  return read(async () => json(await driftOverview()));
}
