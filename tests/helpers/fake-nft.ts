import type { RunOptions, RunResult, Runner } from "../../lib/privileged/run.ts";

/**
 * A recording fake of `nft` for natfarm's table: the commands natfarm's
 * planner writes (a table block, add/flush/delete chain, add rule, add/delete
 * element, delete table), each payload applied all or nothing as nft does,
 * refusing what the kernel refuses (a missing element or chain, an element
 * added again with other data, a jump to a chain that does not exist), and
 * `nft -j list table` answered in nft's JSON shape (rules as text
 * statements, which the read-back prints as they are).
 */
interface Chain {
  base: { type: string; hook: string; prio: number } | null;
  rules: string[];
}
interface SetState {
  kind: "set" | "map";
  type: string;
  data: string | null;
  flags: string[];
  elements: Map<string, { value: string | null; comment?: string }>;
}
export interface FakeTable {
  chains: Map<string, Chain>;
  sets: Map<string, SetState>;
}

const PRIO: Record<string, number> = { mangle: -150, dstnat: -100, srcnat: 100 };

function parseDecl(decl: string): Omit<SetState, "kind" | "elements"> {
  const type = /type ([^;:]+?)(?: : ([^;]+))?;/.exec(decl)!;
  return { type: type[1]!.trim(), data: type[2]?.trim() ?? null, flags: /flags ([^;]+);/.exec(decl)?.[1]!.split(",").map((f) => f.trim()).filter((f) => f !== "dynamic") ?? [] };
}

function splitElements(body: string): string[] {
  return body.split(",").map((s) => s.trim()).filter(Boolean);
}

function parseElement(text: string): { key: string; value: string | null; comment?: string } {
  const m = /^(.*?)(?: comment "([^"]*)")?(?: : (.*))?$/.exec(text.trim())!;
  return { key: m[1]!.trim(), value: m[3]?.trim() ?? null, ...(m[2] !== undefined ? { comment: m[2] } : {}) };
}

export class FakeNft {
  table: FakeTable | null = null;
  /** Every payload written (refused ones too), in order. */
  readonly payloads: string[] = [];

  apply(payload: string): void {
    const work: { t: FakeTable | null } = { t: this.table ? structuredClone(this.table) : null };
    const lines = payload.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      if (line === "table ip natfarm {") {
        const end = lines.indexOf("}", i);
        this.block(work, lines.slice(i + 1, end));
        i = end;
        continue;
      }
      let body = line;
      if (line.endsWith("{") && line.startsWith("add element")) {
        const end = lines.indexOf("}", i);
        body = `${line} ${lines.slice(i + 1, end).join(" ")} }`;
        i = end;
      }
      this.command(work, body);
    }
    if (work.t) this.checkJumps(work.t);
    this.table = work.t;
  }

  private need(work: { t: FakeTable | null }): FakeTable {
    if (!work.t) throw new Error("Error: No such file or directory (table ip natfarm)");
    return work.t;
  }

  private block(work: { t: FakeTable | null }, lines: string[]): void {
    work.t ??= { chains: new Map(), sets: new Map() };
    const t = work.t;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      let m: RegExpExecArray | null;
      if ((m = /^(set|map) (\S+) \{ (.*) \}$/.exec(line))) t.sets.set(m[2]!, { kind: m[1] as "set", ...parseDecl(m[3]!), elements: new Map() });
      else if ((m = /^(set|map) (\S+) \{$/.exec(line))) {
        t.sets.set(m[2]!, { kind: m[1] as "set", ...parseDecl(lines[i + 1]!.trim()), elements: new Map() });
        i += 2;
      } else if ((m = /^chain (\S+) \{$/.exec(line))) {
        const chain: Chain = { base: null, rules: [] };
        for (i++; lines[i]!.trim() !== "}"; i++) {
          const r = lines[i]!.trim();
          const b = /^type (\S+) hook (\S+) priority (\S+);/.exec(r);
          if (b) chain.base = { type: b[1]!, hook: b[2]!, prio: PRIO[b[3]!]! };
          else chain.rules.push(r);
        }
        t.chains.set(m[1]!, chain);
      } else throw new Error(`fake nft: unknown block line ${line}`);
    }
  }

  private command(work: { t: FakeTable | null }, line: string): void {
    let m: RegExpExecArray | null;
    if (line === "delete table ip natfarm") {
      this.need(work);
      work.t = null;
    } else if ((m = /^add (set|map) ip natfarm (\S+) \{ (.*) \}$/.exec(line))) {
      this.need(work).sets.set(m[2]!, { kind: m[1] as "set", ...parseDecl(m[3]!), elements: new Map() });
    } else if ((m = /^add chain ip natfarm (\S+)(?: \{ type (\S+) hook (\S+) priority (\S+);.*\})?$/.exec(line))) {
      const t = this.need(work);
      if (!t.chains.has(m[1]!)) t.chains.set(m[1]!, { base: m[2] ? { type: m[2], hook: m[3]!, prio: PRIO[m[4]!]! } : null, rules: [] });
    } else if ((m = /^flush chain ip natfarm (\S+)$/.exec(line))) {
      this.chain(work, m[1]!).rules = [];
    } else if ((m = /^delete chain ip natfarm (\S+)$/.exec(line))) {
      const c = this.chain(work, m[1]!);
      if (c.rules.length) throw new Error(`Error: Could not process rule: Device or resource busy (chain ${m[1]} not empty)`);
      this.need(work).chains.delete(m[1]!);
    } else if ((m = /^add rule ip natfarm (\S+) (.*)$/.exec(line))) {
      this.chain(work, m[1]!).rules.push(m[2]!);
    } else if ((m = /^(add|delete) element ip natfarm (\S+) \{ (.*) \}$/.exec(line))) {
      const set = this.need(work).sets.get(m[2]!);
      if (!set) throw new Error(`Error: No such file or directory (set ${m[2]})`);
      for (const text of splitElements(m[3]!)) {
        const e = parseElement(text);
        const have = set.elements.get(e.key);
        if (m[1] === "delete") {
          if (!have) throw new Error(`Error: Could not process rule: No such file or directory (element ${e.key} of ${m[2]})`);
          set.elements.delete(e.key);
        } else {
          if (have && (have.value !== e.value || have.comment !== e.comment)) throw new Error(`Error: Could not process rule: File exists (element ${e.key} of ${m[2]})`);
          set.elements.set(e.key, { value: e.value, ...(e.comment !== undefined ? { comment: e.comment } : {}) });
        }
      }
    } else throw new Error(`Error: syntax error (fake nft does not know: ${line})`);
  }

  private chain(work: { t: FakeTable | null }, name: string): Chain {
    const c = this.need(work).chains.get(name);
    if (!c) throw new Error(`Error: No such file or directory (chain ${name})`);
    return c;
  }

  private checkJumps(t: FakeTable): void {
    const targets = [...t.chains.values()].flatMap((c) => c.rules.flatMap((r) => [...r.matchAll(/(?:jump|goto) (\S+)/g)].map((x) => x[1]!)));
    for (const s of t.sets.values()) for (const e of s.elements.values()) if (e.value?.startsWith("goto ")) targets.push(e.value.slice(5));
    for (const name of targets) if (!t.chains.has(name)) throw new Error(`Error: Could not process rule: No such file or directory (jump to ${name})`);
  }

  /** `nft -j list table ip natfarm`, in nft's JSON shape. */
  json(): string {
    const t = this.table;
    if (!t) return "";
    const items: object[] = [{ table: { family: "ip", name: "natfarm", handle: 1 } }];
    let handle = 2;
    for (const [name, s] of t.sets) {
      const elem = [...s.elements].map(([key, e]) => {
        const k = e.comment !== undefined ? { elem: { val: key, comment: e.comment } } : key;
        if (s.data === null) return k;
        const goto = e.value?.startsWith("goto ") ? { goto: { target: e.value.slice(5) } } : e.value;
        return [k, goto];
      });
      items.push({ [s.kind]: { family: "ip", name, table: "natfarm", type: s.type.includes(" . ") ? s.type.split(" . ") : s.type, handle: handle++, ...(s.data ? { map: s.data } : {}), ...(s.flags.length ? { flags: s.flags } : {}), ...(elem.length ? { elem } : {}) } });
    }
    for (const [name, c] of t.chains) items.push({ chain: { family: "ip", table: "natfarm", name, handle: handle++, ...(c.base ? { ...c.base, policy: "accept" } : {}) } });
    for (const [name, c] of t.chains) {
      for (const r of c.rules) {
        const m = /^(.*?)(?: comment "([^"]*)")?$/.exec(r)!;
        items.push({ rule: { family: "ip", table: "natfarm", chain: name, handle: handle++, ...(m[2] !== undefined ? { comment: m[2] } : {}), expr: [m[1]] } });
      }
    }
    return JSON.stringify({ nftables: [{ metainfo: { version: "1.0.6" } }, ...items] });
  }
}

export interface FakeNftRunner {
  run: Runner;
  calls: { program: string; args: readonly string[]; input?: string }[];
}

export function fakeNftRunner(kernel: FakeNft): FakeNftRunner {
  const fake: FakeNftRunner = {
    calls: [],
    async run(program, args, options: RunOptions = {}): Promise<RunResult> {
      fake.calls.push({ program, args, input: options.input });
      if (program === "nft" && args.join(" ") === "-j list table ip natfarm") {
        const out = kernel.json();
        return out ? { stdout: out, stderr: "", exitCode: 0 } : { stdout: "", stderr: "Error: No such file or directory\nlist table ip natfarm\n", exitCode: 1 };
      }
      if (program === "nft" && args.join(" ") === "-f -") {
        kernel.payloads.push(options.input ?? "");
        try {
          kernel.apply(options.input ?? "");
          return { stdout: "", stderr: "", exitCode: 0 };
        } catch (e) {
          return { stdout: "", stderr: `${(e as Error).message}\n`, exitCode: 1 };
        }
      }
      if (program === "ip" && args.join(" ") === "-j -4 addr show") return { stdout: "[]", stderr: "", exitCode: 0 };
      throw new Error(`fake nft runner: unexpected ${program} ${args.join(" ")}`);
    },
  };
  return fake;
}
