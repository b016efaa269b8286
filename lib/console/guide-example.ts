import type { FarmInput } from "../farms/schema.ts";

/**
 * The training guide's own farm: VIP 192.168.101.250 tcp/443, two equal
 * backends with marks 0x20c and 0x20d, DNAT mode. It is for reading rules
 * against the guide; the lab can only carry traffic for VIPs in
 * 198.51.100.0/24 and backends from 203.0.113.10 on.
 */
export const GUIDE_EXAMPLE: FarmInput = {
  name: "app",
  vip: "192.168.101.250",
  ports: "443",
  protocol: "tcp",
  mode: "dnat",
  backends: [
    { ip: "192.168.1.10", port: 443, weight: 1, mark: "0x20c" },
    { ip: "192.168.1.11", port: 443, weight: 1, mark: "0x20d" },
  ],
};

/**
 * The guide's farm as the lab can carry it: the same shape (two equal
 * backends, DNAT, one port) on the lab's addresses, so that it can be sent
 * test connections from the Lab page right away (its client is 198.51.100.2,
 * its backends answer from 203.0.113.10 on, on ports 80, 443 and 8080).
 * Marks are allocated (the guide's own may be taken by the guide's farm).
 */
export const LAB_EXAMPLE: FarmInput = {
  name: "lab-example",
  vip: "198.51.100.200",
  ports: "443",
  protocol: "tcp",
  mode: "dnat",
  backends: [
    { ip: "203.0.113.10", port: 443, weight: 1 },
    { ip: "203.0.113.11", port: 443, weight: 1 },
  ],
};
