import type { RunOptions, RunResult, Runner } from "../../lib/privileged/run.ts";

/**
 * A recording fake of the kernel's side of iptables-restore: tables of
 * chains, each `*table ... COMMIT` section applied all or nothing (as
 * iptables-nft commits them), stopping after a given number of sections as a
 * killed apply would. It refuses what the kernel refuses: a jump to a chain
 * that is not declared, deleting a rule that is not there, removing a chain
 * that is still referenced or not empty.
 */
interface Rule {
  spec: string;
  packets: number;
  bytes: number;
}
type Chains = Map<string, { policy: string | null; rules: Rule[] }>;

const BUILTINS: Record<string, string[]> = {
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
};
const JUMP = /-[jg] (\S+)$/;
const TARGETS = new Set(["ACCEPT", "DROP", "RETURN", "MARK", "CONNMARK", "DNAT", "SNAT", "MASQUERADE", "HMARK"]);

export class FakeKernel {
  readonly tables = new Map<string, Chains>();
  /** Every section committed, in order: what a test can assert on. */
  readonly committed: { table: string; lines: string[] }[] = [];

  constructor() {
    for (const [table, chains] of Object.entries(BUILTINS)) this.tables.set(table, new Map(chains.map((c) => [c, { policy: "ACCEPT", rules: [] }])));
  }

  /** Applies a payload's sections in order; `maxSections` stops early as a killed process does. */
  restore(payload: string, maxSections = Infinity): void {
    let table: string | null = null;
    let work: Chains | null = null;
    let lines: string[] = [];
    let done = 0;
    for (const raw of payload.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      if (line.startsWith("*")) {
        if (done >= maxSections) return;
        table = line.slice(1);
        work = structuredClone(this.tables.get(table)!);
        lines = [];
        continue;
      }
      if (!work || !table) throw new Error(`line outside a table: ${line}`);
      if (line === "COMMIT") {
        this.checkJumps(table, work);
        this.tables.set(table, work);
        this.committed.push({ table, lines });
        done++;
        work = null;
        continue;
      }
      lines.push(line);
      this.apply(work, line);
    }
    if (work) throw new Error("payload ended without COMMIT");
  }

  private apply(chains: Chains, line: string): void {
    let m: RegExpExecArray | null;
    if ((m = /^:(\S+) (\S+) \[\d+:\d+\]$/.exec(line))) {
      const c = chains.get(m[1]!);
      if (c) c.rules = [];
      else chains.set(m[1]!, { policy: null, rules: [] });
    } else if ((m = /^(?:\[(\d+):(\d+)\] )?-A (\S+) (.*)$/.exec(line))) {
      this.chain(chains, m[3]!).rules.push({ spec: m[4]!, packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) });
    } else if ((m = /^-I (\S+) (\d+) (.*)$/.exec(line))) {
      this.chain(chains, m[1]!).rules.splice(Number(m[2]) - 1, 0, { spec: m[3]!, packets: 0, bytes: 0 });
    } else if ((m = /^-D (\S+) (.*)$/.exec(line))) {
      const rules = this.chain(chains, m[1]!).rules;
      const i = rules.findIndex((r) => r.spec === m![2]);
      if (i === -1) throw new Error(`Bad rule (does a matching rule exist in that chain?): ${line}`);
      rules.splice(i, 1);
    } else if ((m = /^-F (\S+)$/.exec(line))) {
      this.chain(chains, m[1]!).rules = [];
    } else if ((m = /^-X (\S+)$/.exec(line))) {
      const name = m[1]!;
      if (this.chain(chains, name).rules.length) throw new Error(`Directory not empty: ${name}`);
      for (const [other, c] of chains) if (c.rules.some((r) => JUMP.exec(r.spec)?.[1] === name)) throw new Error(`Too many links: ${name} is referenced by ${other}`);
      chains.delete(name);
    } else throw new Error(`unknown line: ${line}`);
  }

  private chain(chains: Chains, name: string) {
    const c = chains.get(name);
    if (!c) throw new Error(`Chain '${name}' does not exist`);
    return c;
  }

  private checkJumps(table: string, chains: Chains): void {
    for (const [name, c] of chains) {
      for (const r of c.rules) {
        const target = JUMP.exec(r.spec)?.[1];
        if (target && !TARGETS.has(target) && !chains.has(target)) throw new Error(`${table} ${name}: jump to undeclared chain ${target}`);
      }
    }
  }

  /** What `iptables-save -c -t table` would print. */
  save(table: string): string {
    const chains = this.tables.get(table)!;
    const out = [`*${table}`];
    for (const [name, c] of chains) out.push(`:${name} ${c.policy ?? "-"} [0:0]`);
    for (const [name, c] of chains) for (const r of c.rules) out.push(`[${r.packets}:${r.bytes}] -A ${name} ${r.spec}`);
    out.push("COMMIT");
    return `${out.join("\n")}\n`;
  }

  clone(): FakeKernel {
    const k = new FakeKernel();
    for (const [t, c] of this.tables) k.tables.set(t, structuredClone(c));
    return k;
  }
}

export interface FakeRunner {
  run: Runner;
  /** Every call, in order. */
  calls: { program: string; args: readonly string[]; input?: string }[];
  /** The next restore is refused at this section (1-based), after committing the ones before it. */
  refuseSection: number | null;
  /** The target's own addresses, for `ip -j addr`. */
  addresses: { ifname: string; local: string; label?: string }[];
}

/** The kernel behind the applier's Runner port: iptables-save, -S, -restore and `ip -j addr` on a FakeKernel. */
export function fakeRunner(kernel: FakeKernel): FakeRunner {
  const ok = (stdout: string): RunResult => ({ stdout, stderr: "", exitCode: 0 });
  const fake: FakeRunner = {
    calls: [],
    refuseSection: null,
    addresses: [],
    async run(program, args, options: RunOptions = {}) {
      fake.calls.push({ program, args, input: options.input });
      if (program === "iptables-save") {
        // Without -t, every table, as iptables-save prints them.
        const t = args.indexOf("-t");
        return ok(t === -1 ? [...kernel.tables.keys()].map((table) => kernel.save(table)).join("") : kernel.save(args[t + 1]!));
      }
      if (program === "iptables" && args.includes("-S")) {
        const table = args[args.indexOf("-t") + 1]!;
        const name = args[args.indexOf("-S") + 1]!;
        const chain = kernel.tables.get(table)?.get(name);
        if (!chain) return { stdout: "", stderr: "iptables v1.8.9 (nf_tables): No chain/target/match by that name.\n", exitCode: 1 };
        const head = chain.policy ? `-P ${name} ${chain.policy}` : `-N ${name}`;
        return ok([head, ...chain.rules.map((r) => `-A ${name} ${r.spec} -c ${r.packets} ${r.bytes}`)].join("\n") + "\n");
      }
      if (program === "iptables-restore") {
        const refuse = fake.refuseSection;
        fake.refuseSection = null;
        try {
          if (refuse === null) kernel.restore(options.input ?? "");
          else {
            kernel.restore(options.input ?? "", refuse - 1);
            throw new Error(`fake refusal of section ${refuse}`);
          }
          return ok("");
        } catch (e) {
          return { stdout: "", stderr: `iptables-restore v1.8.9 (nf_tables): ${(e as Error).message}\n`, exitCode: 2 };
        }
      }
      if (program === "ip" && args.join(" ") === "-j -4 addr show") {
        const links = new Map<string, { ifname: string; addr_info: object[] }>();
        for (const a of fake.addresses) {
          if (!links.has(a.ifname)) links.set(a.ifname, { ifname: a.ifname, addr_info: [] });
          links.get(a.ifname)!.addr_info.push({ family: "inet", local: a.local, prefixlen: 32, ...(a.label ? { label: a.label } : {}) });
        }
        return ok(JSON.stringify([...links.values()]));
      }
      throw new Error(`fake runner: unexpected ${program} ${args.join(" ")}`);
    },
  };
  return fake;
}
