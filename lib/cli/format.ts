import type { TablesSnapshot } from "../applier/tables.ts";

/** `natfarm tables`: like `iptables -L -v -x -n`, with natfarm's farm attribution. */
export function formatTables(snapshot: TablesSnapshot, all: boolean): string {
  const lines: string[] = [];
  for (const table of snapshot.tables) {
    lines.push(`# table ${table.name}`);
    for (const chain of table.chains) {
      const rules = all || chain.owned ? chain.rules : chain.rules.filter((r) => r.owned);
      if (!all && !chain.owned && rules.length === 0) continue;
      lines.push(`Chain ${chain.name}${chain.policy ? ` (policy ${chain.policy})` : ""}${chain.owned ? "" : " [built-in/foreign]"}`);
      for (const r of rules) {
        const who = r.owned ? (r.farm ? `farm ${r.farm}${r.backend !== null ? `#${r.backend}` : ""}` : "natfarm") : "foreign";
        lines.push(`  ${String(r.packets).padStart(10)} ${String(r.bytes).padStart(12)}  ${who.padEnd(20)} ${r.spec}`);
      }
    }
  }
  return lines.join("\n");
}
