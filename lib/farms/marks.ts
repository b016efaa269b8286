/**
 * Netfilter marks identify a backend in the kernel: the mangle table marks a
 * new connection, the nat table translates by that mark. A mark must be unique
 * across every backend of every farm and must not change while the backend
 * lives, or established connections lose their translation. Zevenet reserved
 * 0x200..0xfff; 5,000 farms of 4 backends need more, so natfarm keeps the same
 * start and reserves up to 0xffff.
 */
export const MARK_MIN = 0x200;
export const MARK_MAX = 0xffff;
/** Every mark natfarm hands out has a bit in this mask set (marks >= 0x200): the nat shards check it first. */
export const MARK_RANGE_MASK = 0xfffffe00;

export function formatMark(mark: number): string {
  return `0x${mark.toString(16)}`;
}

/** Parses `0x20c`, `524` or a number; returns null when it is not a mark natfarm may use. */
export function parseMark(value: unknown): number | null {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && /^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(value.trim())) n = Number(value.trim());
  else return null;
  return Number.isInteger(n) && n >= MARK_MIN && n <= MARK_MAX ? n : null;
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
    while (this.next <= MARK_MAX && this.taken.has(this.next)) this.next++;
    if (this.next > MARK_MAX) throw new Error(`no free netfilter mark left in ${formatMark(MARK_MIN)}..${formatMark(MARK_MAX)}`);
    this.taken.add(this.next);
    return this.next;
  }
}
