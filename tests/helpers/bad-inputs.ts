import { guideFarm } from "./farms.ts";

/**
 * The bad-input corpus: each entry is a farm file and the message (farm,
 * backend, field) it must be refused with, at every boundary.
 */
export const good = () => ({ farms: [guideFarm()] });
const withFarm = (patch: Record<string, unknown>) => ({ farms: [{ ...guideFarm(), ...patch }] });
const withBackend = (i: number, patch: Record<string, unknown>) => {
  const f = guideFarm();
  const backends = f.backends!.map((b, k) => (k === i ? { ...b, ...patch } : b));
  return { farms: [{ ...f, backends }] };
};

export const BAD_INPUTS: [string, unknown, RegExp][] = [
  ["invalid VIP", withFarm({ vip: "192.168.101.300" }), /farm "app" › vip: "192\.168\.101\.300" is not a valid IPv4 address/],
  ["IPv6 VIP", withFarm({ vip: "2001:db8::1" }), /farm "app" › vip: IPv6 .* not yet supported/],
  ["invalid backend IP", withBackend(1, { ip: "10.0.0" }), /farm "app" › backend 2 \(10\.0\.0\) › ip: .*not a valid IPv4/],
  ["IPv6 backend", withBackend(0, { ip: "2001:db8::10" }), /backend 1 .* › ip: IPv6/],
  ["port 0", withBackend(0, { port: 0 }), /backend 1 \(192\.168\.1\.10\) › port: port must be a whole number from 1 to 65535/],
  ["port 65536", withBackend(1, { port: 65536 }), /backend 2 \(192\.168\.1\.11\) › port: port must be/],
  ["virtual port 0", withFarm({ ports: "0" }), /farm "app" › ports: port 0 is outside 1\.\.65535/],
  ["virtual port 65536", withFarm({ ports: "80,65536" }), /farm "app" › ports: port 65536 is outside/],
  ["reversed range", withFarm({ ports: "8100:8000" }), /farm "app" › ports: range 8100:8000 is reversed/],
  ["weight 0", withBackend(0, { weight: 0 }), /backend 1 \(192\.168\.1\.10\) › weight: weight must be a whole number from 1 to 100/],
  ["weight -1", withBackend(1, { weight: -1 }), /backend 2 \(192\.168\.1\.11\) › weight: weight must be/],
  ["weight 1.5", withBackend(0, { weight: 1.5 }), /backend 1 .* › weight: weight must be a whole number/],
  ["weight 101", withBackend(0, { weight: 101 }), /weight: weight must be a whole number from 1 to 100/],
  ["shell metacharacters in name", withFarm({ name: "app;rm -rf /" }), /farm "app;rm -rf \/" › name: name may hold only letters, digits, _ and -/],
  ["backticks in name", withFarm({ name: "a`id`" }), /› name: name may hold only/],
  ["name too long", withFarm({ name: "a".repeat(21) }), /› name: name must be at most 20 characters/],
  ["duplicate backends", withBackend(1, { ip: "192.168.1.10", mark: "0x20e" }), /backend 2 \(192\.168\.1\.10\) › ip: duplicate backend 192\.168\.1\.10:443/],
  ["duplicate marks in a farm", withBackend(1, { mark: "0x20c" }), /backend 2 \(192\.168\.1\.11\) › mark: mark 0x20c is already used by backend 1/],
  ["mark outside the range", withBackend(0, { mark: "0x1" }), /backend 1 .* › mark: mark must be a number in 0x200–0xffff or 0x10200–0x1ffff/],
  ["unknown protocol", withFarm({ protocol: "icmp" }), /farm "app" › protocol: protocol must be one of tcp, udp, sctp, all/],
  ["unknown mode", withFarm({ mode: "snat" }), /farm "app" › mode: mode must be "nat"/],
  ["unknown field", withFarm({ vips: "1.2.3.4" }), /farm "app": Unrecognized key: "vips"/],
  ["too many multiport slots", withFarm({ ports: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:20" }), /ports: too many ports: 16 slots/],
  ["protocol all with ports", withFarm({ protocol: "all", ports: "80" }), /ports: protocol "all" balances every port/],
  [
    "duplicate VIP+port+protocol across farms",
    { farms: [guideFarm(), { ...guideFarm(), name: "app2", ports: "80,443", backends: [] }] },
    /farm "app2" › ports: 192\.168\.101\.250 tcp\/80,443 overlaps farm "app"/,
  ],
  [
    "overlapping range across farms",
    { farms: [{ ...guideFarm(), ports: "400:500" }, { ...guideFarm(), name: "b", ports: "450", backends: [] }] },
    /farm "b" › ports: .* overlaps farm "app"/,
  ],
  [
    "duplicate marks across farms",
    { farms: [guideFarm(), { ...guideFarm(), name: "other", vip: "192.168.101.251" }] },
    /farm "other" › backend 1 \(192\.168\.1\.10\) › mark: mark 0x20c is already used by farm "app"/,
  ],
  ["unknown scheduler", withFarm({ scheduler: "leastconn" }), /farm "app" › scheduler: scheduler must be one of weight, roundrobin, sourcehash, priority/],
  ["unknown persistence", withFarm({ persistence: "cookie" }), /farm "app" › persistence: persistence must be "none" or "srcip"/],
  ["persistence TTL 0", withFarm({ persistence: "srcip", persistenceTtl: 0 }), /farm "app" › persistenceTtl: persistenceTtl must be a whole number from 1 to 86400/],
  ["persistence TTL too long", withFarm({ persistenceTtl: 86_401 }), /› persistenceTtl: persistenceTtl must be a whole number/],
  ["persistence TTL 1.5", withFarm({ persistenceTtl: 1.5 }), /› persistenceTtl: persistenceTtl must be a whole number/],
  ["priority 0", withBackend(0, { priority: 0 }), /backend 1 \(192\.168\.1\.10\) › priority: priority must be a whole number from 1 to 9/],
  ["priority 10", withBackend(1, { priority: 10 }), /backend 2 .* › priority: priority must be a whole number from 1 to 9/],
  ["check interval 0", withFarm({ healthcheck: { interval: 0 } }), /farm "app" › healthcheck › interval: interval must be a whole number from 1 to 3600/],
  ["check timeout not below interval", withFarm({ healthcheck: { interval: 2, timeout: 2 } }), /healthcheck › timeout: timeout \(2 s\) must be shorter than the interval/],
  ["check failures 0", withFarm({ healthcheck: { failures: 0 } }), /healthcheck › failures: failures must be a whole number from 1 to 10/],
  ["check passes 11", withFarm({ healthcheck: { passes: 11 } }), /healthcheck › passes: passes must be/],
  ["check type unknown", withFarm({ healthcheck: { type: "icmp" } }), /healthcheck › type: type must be one of tcp, udp, http/],
  ["udp check on a tcp farm", withFarm({ healthcheck: { type: "udp" } }), /farm "app" › healthcheck › type: a udp check cannot probe a tcp farm/],
  ["http path without slash", withFarm({ healthcheck: { type: "http", path: "health" } }), /healthcheck › path: path must start with "\/"/],
  ["http status 99", withFarm({ healthcheck: { type: "http", expectStatus: 99 } }), /healthcheck › expectStatus: expectStatus must be a whole number from 100 to 599/],
  ["path on a tcp check", withFarm({ healthcheck: { type: "tcp", path: "/x" } }), /healthcheck › path: path and expectStatus belong to http checks/],
  ["check target without a port", { farms: [{ ...guideFarm(), ports: "443,444", backends: [{ ip: "192.168.1.10", mark: "0x20c" }], healthcheck: {} }] }, /backend 1 \(192\.168\.1\.10\) › port: the health check needs a port/],
  ["backend on its own farm's VIP", withBackend(1, { ip: "192.168.101.250" }), /farm "app" › backend 2 \(192\.168\.101\.250\) › ip: 192\.168\.101\.250 is this farm's own VIP/],
  [
    "backend on another farm's VIP",
    { farms: [guideFarm(), { ...guideFarm(), name: "b", vip: "192.168.101.251", backends: [{ ip: "192.168.101.250", port: 443, mark: "0x20e" }] }] },
    /farm "b" › backend 1 \(192\.168\.101\.250\) › ip: 192\.168\.101\.250 is the VIP of farm "app"/,
  ],
  [
    "VIP on another farm's backend",
    { farms: [guideFarm(), { ...guideFarm(), name: "b", vip: "192.168.1.10", backends: [] }] },
    /farm "b" › vip: 192\.168\.1\.10 is backend 1 \(192\.168\.1\.10\) of farm "app"/,
  ],
  ["duplicate farm names", { farms: [guideFarm(), { ...guideFarm(), vip: "192.168.101.251", backends: [] }] }, /farm "app" › name: farm name "app" is already used/],
];

