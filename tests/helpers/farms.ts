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

/** Golden case: udp lists and ranges, protocol all, sctp, a backend in maintenance, a stopped farm. */
export const MIXED_FARMS: FarmInput[] = [
   {"name":"web","vip":"198.51.100.250","ports":"80,8000:8100","protocol":"udp","mode":"dnat","backends":[{"ip":"203.0.113.10","weight":1, "mark": 512},{"ip":"203.0.113.11","port":80, "weight":2, "mark": 513},{"ip":"203.0.113.12","port":80,"weight":3, "mark": 514, "state": "maintenance"},{"ip":"203.0.113.13","port":80,"weight":3, "mark": 515}]},
   {"name":"any","vip":"198.51.100.251","ports":"*","protocol":"all","mode":"nat","backends":[{"ip":"203.0.113.10","weight":1,"mark":516}]},
   {"name":"sctp-svc","vip":"198.51.100.252","ports":"3868","protocol":"sctp","mode":"nat","backends":[{"ip":"203.0.113.10","port":3868,"weight":1,"mark":517}]},
   {"name":"off","vip":"198.51.100.253","ports":"22","protocol":"tcp","mode":"nat","status":"stopped","backends":[{"ip":"203.0.113.10","port":22,"weight":1,"mark":518}]}
];

/** Golden case: every scheduler, and persistence by source address. */
export const SCHEDULER_FARMS: FarmInput[] = [
  { name: "rr", vip: "198.51.100.40", ports: "80", protocol: "tcp", mode: "dnat", scheduler: "roundrobin", backends: [0, 1, 2].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x300 + i })) },
  { name: "hash", vip: "198.51.100.41", ports: "80", protocol: "tcp", mode: "nat", scheduler: "sourcehash", backends: [0, 1, 2].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x310 + i })) },
  {
    name: "prio",
    vip: "198.51.100.42",
    ports: "80",
    protocol: "tcp",
    mode: "dnat",
    scheduler: "priority",
    backends: [
      { ip: "203.0.113.10", port: 80, weight: 1, priority: 1, mark: 0x320 },
      { ip: "203.0.113.11", port: 80, weight: 3, priority: 1, mark: 0x321 },
      { ip: "203.0.113.12", port: 80, weight: 1, priority: 2, mark: 0x322 },
    ],
  },
  { name: "sticky", vip: "198.51.100.43", ports: "80", protocol: "tcp", mode: "dnat", persistence: "srcip", persistenceTtl: 300, backends: [0, 1].map((i) => ({ ip: `203.0.113.${10 + i}`, port: 80, mark: 0x330 + i })) },
];
