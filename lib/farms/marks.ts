/**
 * Netfilter marks identify a backend in the kernel: the mangle table marks a
 * new connection, the nat table translates by that mark. A mark must be unique
 * across every backend of every farm and must not change while the backend
 * lives, or established connections lose their translation.
 *
 * natfarm reserves 0x200–0x1ffff (bits 9 to 16) and gives backends two pages
 * of it: 0x200–0xffff, then 0x10200–0x1ffff, 130,048 marks, room for 20,000
 * farms of 4 backends (80,000) and more. Why these bounds:
 *   - 0x200 is Zevenet's first mark (it used 0x200–0xfff, later up to
 *     0xffff); 0x0–0x1ff stay other software's, as they always were here.
 *   - The first page is the range natfarm used before (0x200–0xffff): marks
 *     are handed out lowest first, so an installation keeps every mark it
 *     has, and its rules do not change, until it holds 65,024 backends.
 *   - 0x10000–0x101ff is not given to backends: the iptables engine's source
 *     hash puts its scratch values (0x10000 + i, one per backend of a farm, at
 *     most 64) in the packet mark for a moment inside the farm's chain, and
 *     rules that already carry them must keep meaning what they meant.
 *   - It stops at bit 16: bits 17–31 are left to others (Tailscale's 0x40000
 *     and 0x80000 under its mask 0xff0000, and most of the bits Calico and
 *     Cilium claim, 0xffff0000 by default for Calico's). Bit 16 is the
 *     lowest of those masks: on a host that runs them as well, a natfarm mark
 *     above 0xffff is only handed out once the first page is full.
 * natfarm sets the whole 32-bit mark of a connection it balances (MARK
 * --set-xmark M/0xffffffff, CONNMARK with full masks), as it always did.
 */
export const MARK_MIN = 0x200;
export const MARK_MAX = 0x1ffff;
/** The source hash's scratch marks (lib/netfilter/render.ts): never a backend's. */
export const SCRATCH_MIN = 0x10000;
export const SCRATCH_MAX = 0x101ff;
/** How many marks natfarm can hand out: every backend of every farm needs its own. */
export const MARK_CAPACITY = MARK_MAX - MARK_MIN + 1 - (SCRATCH_MAX - SCRATCH_MIN + 1);
/** The ranges backends' marks come from, as text for messages. */
export const MARK_RANGES = "0x200–0xffff or 0x10200–0x1ffff";
/** Every mark natfarm hands out has a bit in this mask set (marks >= 0x200): the nat trees' entry checks it first. */
export const MARK_RANGE_MASK = 0xfffffe00;

export function formatMark(mark: number): string {
  return `0x${mark.toString(16)}`;
}

/** Whether a number is a mark natfarm may give a backend. */
export function isBackendMark(n: number): boolean {
  return Number.isInteger(n) && n >= MARK_MIN && n <= MARK_MAX && (n < SCRATCH_MIN || n > SCRATCH_MAX);
}

/** Parses `0x20c`, `524` or a number; returns null when it is not a mark natfarm may use. */
export function parseMark(value: unknown): number | null {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && /^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(value.trim())) n = Number(value.trim());
  else return null;
  return isBackendMark(n) ? n : null;
}

/** Identifies a backend across applies, for keeping its mark. */
export function backendKey(farm: string, ip: string, port: number | null | undefined): string {
  return `${farm}|${ip}|${port ?? "*"}`;
}

/**
 * Hands out the lowest free marks. `taken` holds every mark in use (explicit
 * marks, marks already in the kernel or the database); it is updated in place.
 */
export class MarkAllocator {
  private next = MARK_MIN;
  constructor(private readonly taken: Set<number>) {}

  allocate(): number {
    while (this.next <= MARK_MAX && (this.taken.has(this.next) || !isBackendMark(this.next))) this.next = this.next === SCRATCH_MIN ? SCRATCH_MAX + 1 : this.next + 1;
    if (this.next > MARK_MAX) throw new Error(`no free netfilter mark left in ${MARK_RANGES}`);
    this.taken.add(this.next);
    return this.next;
  }
}
