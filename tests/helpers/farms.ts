import type { FarmInput } from "../../lib/farms/schema.ts";

/** The guide's own example: farm `app`, two equal backends, marks 0x20c and 0x20d. */
export function guideFarm(mode: "nat" | "dnat" = "dnat"): FarmInput {
  return {
    name: "app",
    vip: "192.168.101.250",
    ports: "443",
    protocol: "tcp",
    mode,
    backends: [
      { ip: "192.168.1.10", port: 443, weight: 1, mark: "0x20c" },
      { ip: "192.168.1.11", port: 443, weight: 1, mark: "0x20d" },
    ],
  };
}

/** A lab farm: VIP on the client side, backends on the lab's backend network. */
export function labFarm(name: string, vip: string, port: number, weights: number[], mode: "nat" | "dnat" = "dnat", protocol: "tcp" | "udp" = "tcp"): FarmInput {
  return {
    name,
    vip,
    ports: String(port),
    protocol,
    mode,
    backends: weights.map((weight, i) => ({ ip: `203.0.113.${10 + i}`, port, weight })),
  };
}
