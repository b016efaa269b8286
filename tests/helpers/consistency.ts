/**
 * The forwarding invariant of a half-done change, checked on the live rules:
 * every mark that mangle can set (a MARK rule in a chain reached from the
 * hooked entry chain) has a DNAT in a reachable nat chain, and its
 * translation is the one some known definition gives that mark; where every
 * definition of the mark SNATs, a reachable SNAT is there too.
 */
export interface MarkDefinition {
  dest: string;
  snat: boolean;
}

interface Parsed {
  chains: Map<string, string[]>;
}

function parse(save: string): Parsed {
  const chains = new Map<string, string[]>();
  for (const line of save.split("\n")) {
    const m = /^(?:\[\d+:\d+\] )?-A (\S+) (.*)$/.exec(line);
    if (!m) continue;
    if (!chains.has(m[1]!)) chains.set(m[1]!, []);
    chains.get(m[1]!)!.push(m[2]!);
  }
  return { chains };
}

/** Chains reached from `builtin` through natfarm's entry chain, jump by jump, in the order packets walk them. */
function reachable(t: Parsed, builtin: string, entry: string): Set<string> {
  const out = new Set<string>();
  if (!(t.chains.get(builtin) ?? []).some((r) => r.endsWith(`-j ${entry}`))) return out;
  const walk = (chain: string) => {
    for (const r of t.chains.get(chain) ?? []) {
      const j = /-j (NATFARM-\S+)$/.exec(r);
      if (j && !out.has(j[1]!)) {
        out.add(j[1]!);
        walk(j[1]!);
      }
    }
  };
  walk(entry);
  return out;
}

export function forwardingProblems(mangleSave: string, natSave: string, definitions: ReadonlyMap<number, readonly MarkDefinition[]>): string[] {
  const mangle = parse(mangleSave);
  const nat = parse(natSave);
  const marked = new Set<number>();
  for (const chain of reachable(mangle, "PREROUTING", "NATFARM-PREROUTING")) {
    for (const r of mangle.chains.get(chain) ?? []) {
      const m = /-j MARK --set-xmark (0x[0-9a-f]+)\//.exec(r);
      if (m) marked.add(Number(m[1]));
    }
  }
  const dnat = new Map<number, string>();
  for (const chain of reachable(nat, "PREROUTING", "NATFARM-PREROUTING")) {
    for (const r of nat.chains.get(chain) ?? []) {
      const m = /-m mark --mark (0x[0-9a-f]+) .*-j DNAT --to-destination (\S+)$/.exec(r);
      // The first translation of a mark is the one packets get.
      if (m && !dnat.has(Number(m[1]))) dnat.set(Number(m[1]), m[2]!);
    }
  }
  const snat = new Set<number>();
  for (const chain of reachable(nat, "POSTROUTING", "NATFARM-POSTROUTING")) {
    for (const r of nat.chains.get(chain) ?? []) {
      const m = /-m mark --mark (0x[0-9a-f]+) .*-j SNAT /.exec(r);
      if (m) snat.add(Number(m[1]));
    }
  }
  const problems: string[] = [];
  for (const mark of marked) {
    const hex = `0x${mark.toString(16)}`;
    const defs = definitions.get(mark) ?? [];
    const dest = dnat.get(mark);
    if (dest === undefined) problems.push(`mark ${hex} is set by mangle but has no reachable DNAT`);
    else if (!defs.some((d) => d.dest === dest)) problems.push(`mark ${hex} is translated to ${dest}, which no definition gives it (${defs.map((d) => d.dest).join(", ") || "none"})`);
    if (defs.length > 0 && defs.every((d) => d.snat) && !snat.has(mark)) problems.push(`mark ${hex} belongs to a nat farm but has no reachable SNAT`);
  }
  return problems;
}
