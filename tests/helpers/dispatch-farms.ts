import type { FarmInput } from "../../lib/farms/schema.ts";

/**
 * 40 farms for the dispatch tree's golden file and its tests: many farms on
 * one VIP (single ports, a list, ranges, tcp and udp side by side), a VIP
 * with an every-port tcp farm beside a udp one, a protocol-all farm, sctp,
 * VIPs spread over several /28s and another /24, a drained backend, a
 * stopped farm.
 */
const backends = (n: number, port: number | null = 80) => Array.from({ length: n }, (_, i) => ({ ip: `203.0.113.${10 + i}`, ...(port === null ? {} : { port }), weight: i + 1 }));

export const DISPATCH_FARMS: FarmInput[] = [
  { name: "web80", vip: "198.51.100.10", ports: "80", protocol: "tcp", mode: "nat", backends: backends(2) },
  { name: "web443", vip: "198.51.100.10", ports: "443", protocol: "tcp", mode: "dnat", backends: backends(3, 443) },
  { name: "alt", vip: "198.51.100.10", ports: "8000:8100", protocol: "tcp", mode: "nat", backends: backends(2, 8080) },
  { name: "list", vip: "198.51.100.10", ports: "1000,1002,1004:1006", protocol: "tcp", mode: "dnat", backends: backends(1, null) },
  ...[2000, 2001, 2002, 2003, 2004, 2005, 2016, 2017].map((p): FarmInput => ({ name: `p${p}`, vip: "198.51.100.10", ports: String(p), protocol: "tcp", mode: p % 2 ? "nat" : "dnat", backends: backends(1, 9000) })),
  { name: "dns", vip: "198.51.100.10", ports: "53", protocol: "udp", mode: "dnat", backends: backends(2, 53) },
  { name: "media", vip: "198.51.100.10", ports: "5000:5100", protocol: "udp", mode: "nat", backends: backends(2, null) },
  { name: "everyport", vip: "198.51.100.11", ports: "*", protocol: "tcp", mode: "nat", backends: backends(2, null) },
  { name: "dns11", vip: "198.51.100.11", ports: "53", protocol: "udp", mode: "dnat", backends: backends(1, 53) },
  { name: "all", vip: "198.51.100.12", ports: "*", protocol: "all", mode: "nat", backends: backends(1, null) },
  { name: "diameter", vip: "198.51.100.13", ports: "3868", protocol: "sctp", mode: "nat", backends: backends(1, 3868) },
  {
    name: "drained",
    vip: "198.51.100.14",
    ports: "80",
    protocol: "tcp",
    mode: "dnat",
    backends: [
      { ip: "203.0.113.10", port: 80, weight: 1 },
      { ip: "203.0.113.11", port: 80, weight: 1, state: "maintenance" },
      { ip: "203.0.113.12", port: 80, weight: 1, state: "down" },
    ],
  },
  { name: "web8080", vip: "198.51.100.10", ports: "8080", protocol: "udp", mode: "dnat", backends: backends(1) },
  { name: "off", vip: "198.51.100.15", ports: "80", protocol: "tcp", mode: "nat", status: "stopped", backends: backends(1) },
  ...Array.from({ length: 14 }, (_, i): FarmInput => ({ name: `spread${i}`, vip: `198.51.100.${20 + i * 3}`, ports: "80", protocol: "tcp", mode: i % 2 ? "nat" : "dnat", backends: backends(1) })),
  ...Array.from({ length: 5 }, (_, i): FarmInput => ({ name: `doc${i}`, vip: `192.0.2.${100 + i}`, ports: "443", protocol: "tcp", mode: "nat", backends: backends(2, 443) })),
];
