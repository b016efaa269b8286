import "server-only";
import type { z } from "zod";
import { farmLive } from "@/lib/console/farm-live";
import { farmService } from "@/lib/console/farm-service";
import { farmView } from "@/lib/console/farm-view";
import type { StatisticsSchema } from "./schemas.ts";

/**
 * A farm's statistics as its page shows them, from the same two sources:
 * the share of new connections each backend's rule gives (the console's
 * farm view, after the kernel's rounding) and conntrack's counts by mark
 * (the page's live feed, read through the agent and shared with the pages
 * polling it).
 */
export type Statistics = z.output<typeof StatisticsSchema>;

export async function farmStatistics(name: string): Promise<Statistics | null> {
  const [row, live] = await Promise.all([(await farmService()).getFarm(name), farmLive(name)]);
  if (!row || !live) return null;
  const shares = new Map(farmView(row).backends.map((b) => [b.mark, b]));
  const stats = new Map(live.backends.map((b) => [b.mark, b]));
  return {
    farm: row.name,
    at: live.at,
    status: live.status,
    backends: row.backends.map((b) => {
      const v = shares.get(b.mark);
      const l = stats.get(b.mark);
      return {
        mark: v?.markHex ?? `0x${b.mark.toString(16)}`,
        ip: b.ip,
        port: b.port,
        weight: b.weight,
        state: b.state as Statistics["backends"][number]["state"],
        share: v?.share ?? 0,
        probability: v?.probability ?? null,
        healthDetail: b.healthDetail ?? null,
        healthAt: b.healthAt ? b.healthAt.toISOString() : null,
        connections: l?.stats ?? null,
      };
    }),
    totals: live.stats?.totals ?? null,
    statsNote: live.statsNote,
    agentUnavailable: Boolean(live.agentUnavailable),
  };
}
