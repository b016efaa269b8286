import { ALL_PORTS } from "./ports.ts";

/**
 * Things about a valid farm set that an operator should hear about before
 * the kernel does, without being refused: every entry point (validate, apply,
 * import, the console) shows them as `warning: ...` and carries on. Pure: no
 * kernel, no database.
 */
export function farmWarnings(farms: readonly { name: string; vip: string; ports: string | number; protocol: string }[]): string[] {
  const out: string[] = [];
  for (const f of farms) {
    if (f.protocol === "all" && String(f.ports).trim() === ALL_PORTS) {
      out.push(
        `farm "${f.name}": protocol all on ports * captures every connection to ${f.vip}, whatever its protocol and port ` +
          `(SSH and the console included, if ${f.vip} is one of the balancer's own addresses)`,
      );
    }
  }
  return out;
}
