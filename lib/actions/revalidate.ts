import "server-only";
import { revalidatePath } from "next/cache";
import { forgetDrift } from "@/lib/console/farm-service";

/** After a mutation: every page that shows the farm, and a fresh drift comparison. */
export function refreshFarmPages(name?: string) {
  forgetDrift();
  revalidatePath("/");
  revalidatePath("/history");
  revalidatePath("/tables");
  if (name) revalidatePath(`/farms/${encodeURIComponent(name)}`);
}
