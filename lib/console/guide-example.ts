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
