import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import type { FarmInput } from "../lib/farms/schema.ts";

/** What the benchmarks share: the farm set they measure and the machine line they print. */

/**
 * n farms of 4 backends (weights 1:2:3:4), half NAT and half DNAT, on `vips`
 * VIPs from 198.51.100.<firstVip>, the backends on `port`.
 */
export function benchFarms(n: number, o: { firstVip?: number; vips?: number; port?: number } = {}): FarmInput[] {
  const { firstVip = 1, vips = 250, port = 8080 } = o;
  return Array.from({ length: n }, (_, i) => ({
    name: `f${i}`,
    vip: `198.51.100.${firstVip + (i % vips)}`,
    ports: String(1000 + Math.floor(i / vips)),
    protocol: "tcp",
    mode: i % 2 ? "nat" : "dnat",
    backends: [1, 2, 3, 4].map((w, k) => ({ ip: `203.0.113.${10 + k}`, port, weight: w })),
  }));
}

/** The same farms on a lab: VIPs 198.51.100.10-249, so that no farm sits on the lab client's or balancer's own address, and the lab backends' `port`. */
export const labBenchFarms = (n: number, port: number): FarmInput[] => benchFarms(n, { firstVip: 10, vips: 240, port });

export function machine(): string {
  const cpus = os.cpus();
  const ipt = spawnSync("iptables", ["--version"], { encoding: "utf8" }).stdout.trim();
  const [l1, l5] = os.loadavg();
  return `${cpus[0]?.model ?? "unknown cpu"}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load ${l1!.toFixed(2)}/${l5!.toFixed(2)}, Linux ${os.release()}, ${ipt}, Node ${process.version}`;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const ms = (x: number) => `${x.toFixed(0)} ms`;

/**
 * CPU time (ms) of this process and of the children it has waited for
 * (/proc/self/stat cutime and cstime, in USER_HZ = 100 ticks a second): the
 * privileged programs a library call runs are counted with it.
 */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  // Fields after the command name, which may hold spaces: cutime and cstime are the 14th and 15th.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (u.user + u.system) / 1000 + (Number(f[13]) + Number(f[14])) * 10;
}
