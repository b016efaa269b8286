/**
 * Virtual port specifications as operators write them: `443`, `80,443`,
 * `8000:8100`, a mix (`80,8000:8100`), or `*` for every port. They become one
 * `-m multiport --dports` match, which holds at most 15 slots (a range takes
 * two), so a spec that does not fit is refused here rather than by iptables.
 */
export type PortItem = { from: number; to: number };

export const ALL_PORTS = "*";
export const MULTIPORT_SLOTS = 15;

export type PortSpecResult = { ok: true; items: PortItem[] } | { ok: false; error: string };

function parsePortNumber(text: string): number | string {
  if (!/^\d{1,5}$/.test(text)) return `"${text}" is not a port number`;
  const n = Number(text);
  if (n < 1 || n > 65535) return `port ${n} is outside 1..65535`;
  return n;
}

/** Parses a port spec; `*` yields an empty list (no port match). */
export function parsePortSpec(spec: string): PortSpecResult {
  const text = spec.trim();
  if (text === ALL_PORTS) return { ok: true, items: [] };
  if (text === "") return { ok: false, error: 'ports are required (e.g. "443", "80,443", "8000:8100" or "*")' };
  const items: PortItem[] = [];
  for (const part of text.split(",")) {
    const p = part.trim();
    const range = /^(\d+):(\d+)$/.exec(p);
    if (range) {
      const from = parsePortNumber(range[1]!);
      const to = parsePortNumber(range[2]!);
      if (typeof from === "string") return { ok: false, error: from };
      if (typeof to === "string") return { ok: false, error: to };
      if (from >= to) return { ok: false, error: `range ${p} is reversed or empty: its start must be below its end` };
      items.push({ from, to });
    } else {
      const port = parsePortNumber(p);
      if (typeof port === "string") return { ok: false, error: p === "" ? "empty item in the port list" : port };
      items.push({ from: port, to: port });
    }
  }
  const sorted = [...items].sort((a, b) => a.from - b.from);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.from <= sorted[i - 1]!.to) {
      return { ok: false, error: `ports ${formatItem(sorted[i - 1]!)} and ${formatItem(sorted[i]!)} overlap` };
    }
  }
  const slots = items.reduce((n, it) => n + (it.from === it.to ? 1 : 2), 0);
  if (slots > MULTIPORT_SLOTS) {
    return { ok: false, error: `too many ports: ${slots} slots, multiport holds ${MULTIPORT_SLOTS} (a range takes 2)` };
  }
  return { ok: true, items };
}

function formatItem(item: PortItem): string {
  return item.from === item.to ? String(item.from) : `${item.from}:${item.to}`;
}

/** The canonical text, as iptables-save prints it in `--dports`. */
export function formatPortItems(items: PortItem[]): string {
  return items.length === 0 ? ALL_PORTS : items.map(formatItem).join(",");
}

/** Whether two parsed specs share a port (an empty list means every port). */
export function portsOverlap(a: PortItem[], b: PortItem[]): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return a.some((x) => b.some((y) => x.from <= y.to && y.from <= x.to));
}
