import ipaddr from "ipaddr.js";

/**
 * Addresses a farm may use. IPv4 only for now (the rule engine drives
 * iptables, not ip6tables); addresses that can never be a service or a real
 * server (unspecified, broadcast, multicast, loopback) are refused up front.
 */
const UNUSABLE_RANGES = new Set(["unspecified", "broadcast", "multicast", "loopback"]);

/** Backends repeat across farms (5,000 farms often share a handful of addresses): remember verdicts. */
const verdicts = new Map<string, string | null>();

export function checkIPv4(value: string): string | null {
  let v = verdicts.get(value);
  if (v === undefined) {
    v = checkIPv4Uncached(value);
    if (verdicts.size > 100_000) verdicts.clear();
    verdicts.set(value, v);
  }
  return v;
}

function checkIPv4Uncached(value: string): string | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(value)) {
    const range = ipaddr.IPv4.parse(value).range();
    if (UNUSABLE_RANGES.has(range)) return `${value} is a ${range} address, not usable here`;
    return null;
  }
  if (ipaddr.IPv6.isValid(value)) return `IPv6 (${value}) is not yet supported: use an IPv4 address`;
  return `"${value}" is not a valid IPv4 address`;
}
