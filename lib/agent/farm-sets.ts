import { FarmValidationError } from "../applier/errors.ts";
import { validateFarms } from "../applier/apply.ts";
import { describePath } from "../farms/errors.ts";
import { checkFarmSet, FarmSchema, type Farm } from "../farms/schema.ts";
import { randomBytes } from "node:crypto";

/**
 * The farm sets the agent was last sent, so that a one-farm change carries
 * only that farm: the console names the set it builds on (`base`) and sends
 * the farms that differ. What reaches the applier is the same validated set
 * either way. The checks across farms (names, VIP and port overlaps, marks,
 * VIPs on backends) are re-run unless the change cannot affect them: no farm
 * added or removed, and every changed farm keeps its name, VIP, protocol,
 * ports and backends' addresses and marks (a weight, a state, a mode or a
 * scheduler change).
 */
interface Entry {
  raw: Record<string, unknown>;
  farm: Farm;
  cross: string;
}

export class StaleSetError extends Error {
  constructor(readonly base: string) {
    super(`farm set ${base} is not known to this agent (it was restarted or forgot it): send the whole set`);
    this.name = "StaleSetError";
  }
}

const KEEP = 4;

function crossKey(f: Farm): string {
  return JSON.stringify([f.name, f.vip, f.protocol, f.ports, f.status, f.backends.map((b) => [b.ip, b.port, b.mark ?? null])]);
}

export class FarmSets {
  private readonly sets = new Map<string, Map<string, Entry>>();

  /** A whole set: validated as the applier validates it. */
  full(raws: Record<string, unknown>[]): { id: string; farms: Farm[] } {
    const farms = validateFarms(raws);
    const set = new Map<string, Entry>();
    farms.forEach((farm, i) => set.set(farm.name, { raw: raws[i]!, farm, cross: crossKey(farm) }));
    return { id: this.keep(set), farms };
  }

  delta(base: string, upsert: Record<string, unknown>[], remove: string[]): { id: string; farms: Farm[] } {
    const prev = this.sets.get(base);
    if (!prev) throw new StaleSetError(base);
    const next = new Map(prev);
    let membership = remove.length > 0;
    for (const name of remove) next.delete(name);
    const changed: Entry[] = [];
    for (const raw of upsert) {
      const one = FarmSchema.safeParse(raw);
      // Any invalid farm: the whole set through the strict path, for the same messages as a full send.
      if (!one.success) return this.full([...next.values()].map((e) => e.raw).filter((r) => r.name !== raw.name).concat(raw));
      const entry = { raw, farm: one.data, cross: crossKey(one.data) };
      const old = next.get(entry.farm.name);
      if (!old) membership = true;
      else if (old.cross !== entry.cross) membership = true;
      next.set(entry.farm.name, entry);
      changed.push(entry);
    }
    const farms = [...next.values()].map((e) => e.farm);
    if (membership) {
      const issues: string[] = [];
      checkFarmSet(farms, (path, message) => issues.push(`${describePath(path, farms)}: ${message}`));
      if (issues.length) throw new FarmValidationError(issues);
    }
    return { id: this.keep(next), farms };
  }

  private keep(set: Map<string, Entry>): string {
    const id = randomBytes(8).toString("hex");
    this.sets.set(id, set);
    while (this.sets.size > KEEP) this.sets.delete(this.sets.keys().next().value!);
    return id;
  }
}
