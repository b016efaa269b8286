import type { PrismaClient } from "../generated/prisma/client.ts";

/**
 * Every farm's backend addresses, "ip:port ip:port", by farm name: what the
 * farms list searches and what its bulk drain looks for. Two plain queries
 * joined here (an include binds a parameter per farm, past SQLite's limit at
 * a few thousand farms); 20,000 backends read in a few milliseconds.
 */
export async function loadBackendAddresses(db: PrismaClient): Promise<Map<string, string>> {
  const [farms, backends] = await Promise.all([
    db.farm.findMany({ select: { id: true, name: true } }),
    db.backend.findMany({ select: { farmId: true, ip: true, port: true }, orderBy: [{ farmId: "asc" }, { position: "asc" }] }),
  ]);
  const byId = new Map<number, string[]>();
  for (const b of backends) {
    let list = byId.get(b.farmId);
    if (!list) byId.set(b.farmId, (list = []));
    list.push(b.port ? `${b.ip}:${b.port}` : b.ip);
  }
  return new Map(farms.map((f) => [f.name, (byId.get(f.id) ?? []).join(" ")]));
}
