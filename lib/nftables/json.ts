import { formatMark } from "../farms/marks.ts";
import { NFT_FAMILY, NFT_TABLE } from "./layout.ts";

/**
 * `nft -j list table ip natfarm` → the live model. Rules and elements are
 * printed back into the text natfarm writes (render.ts), for the small
 * vocabulary natfarm uses; anything else prints as `?<json>`, which matches
 * nothing natfarm wants and so shows as drift rather than being trusted.
 */
export interface LiveNftRule {
  text: string;
  handle: number;
}
export interface LiveNftChain {
  name: string;
  handle: number;
  base: { type: string; hook: string; prio: number; policy: string } | null;
  rules: LiveNftRule[];
}
export interface LiveNftElement {
  key: string;
  value: string | null;
  comment?: string;
  /** The element's own counter (the `backends` set). */
  counter?: { packets: number; bytes: number };
}
export interface LiveNftSet {
  name: string;
  kind: "set" | "map";
  /** `ipv4_addr . mark`, as the declaration wrote it. */
  type: string;
  /** A map's data type. */
  data: string | null;
  flags: string[];
  elements: LiveNftElement[];
}
export interface LiveNftCounter {
  name: string;
  packets: number;
  bytes: number;
}
export interface LiveNft {
  /** Whether `table ip natfarm` exists. */
  exists: boolean;
  chains: Map<string, LiveNftChain>;
  sets: Map<string, LiveNftSet>;
  counters: Map<string, LiveNftCounter>;
  /** What the read covered: the whole table, or a list of named objects. */
  full: boolean;
}

export function emptyLive(full = true): LiveNft {
  return { exists: false, chains: new Map(), sets: new Map(), counters: new Map(), full };
}

type J = unknown;
type Obj = Record<string, J>;
const isObj = (v: J): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** How a number prints depends on what it is compared with or written to: marks in hex, the rest in decimal. */
type Hint = "mark" | "plain";

const MARK_KEYS = new Set(["mark"]);

function hintOf(expr: J): Hint {
  if (isObj(expr)) {
    const meta = expr.meta;
    const ct = expr.ct;
    if (isObj(meta) && MARK_KEYS.has(String(meta.key))) return "mark";
    if (isObj(ct) && MARK_KEYS.has(String(ct.key))) return "mark";
  }
  return "plain";
}

function unknown(v: J): string {
  return `?${JSON.stringify(v)}`;
}

export function printExpr(e: J, hint: Hint = "plain"): string {
  if (typeof e === "number") return hint === "mark" ? formatMark(e) : String(e);
  if (typeof e === "string") return e;
  if (Array.isArray(e)) return unknown(e);
  if (!isObj(e)) return unknown(e);
  const [kind, body] = Object.entries(e)[0] ?? [];
  const b = body as Obj;
  switch (kind) {
    case "payload":
      return isObj(b) && typeof b.protocol === "string" ? `${b.protocol} ${b.field}` : unknown(e);
    case "meta":
      return `meta ${b.key}`;
    case "ct":
      return b.dir ? `ct ${b.dir} ${b.key}` : `ct ${b.key}`;
    case "concat":
      return Array.isArray(body) ? body.map((x) => printExpr(x, hint)).join(" . ") : unknown(e);
    case "range":
      return Array.isArray(body) && body.length === 2 ? `${printExpr(body[0], hint)}-${printExpr(body[1], hint)}` : unknown(e);
    case "set":
      if (!Array.isArray(body)) return typeof body === "string" ? body : unknown(e);
      return `{ ${body.map((x) => (Array.isArray(x) ? `${printExpr(x[0], hint)} : ${printExpr(x[1])}` : printExpr(x, hint))).join(", ")} }`;
    case "prefix": {
      // nft prints an interval element that is an aligned power of two as a prefix: a mark range (32 bits) back into the range natfarm wrote.
      if (!isObj(b) || typeof b.len !== "number") return unknown(e);
      if (typeof b.addr === "number" && b.len >= 0 && b.len <= 32) {
        const from = b.addr;
        const to = from + 2 ** (32 - b.len) - 1;
        return `${printExpr(from, hint)}-${printExpr(to, hint)}`;
      }
      return typeof b.addr === "string" ? `${b.addr}/${b.len}` : unknown(e);
    }
    case "numgen":
      return `numgen ${b.mode} mod ${b.mod}${b.offset ? ` offset ${formatMark(Number(b.offset))}` : ""}`;
    case "jhash":
      return `jhash ${printExpr(b.expr)} mod ${b.mod} seed ${formatMark(Number(b.seed ?? 0))}${b.offset ? ` offset ${formatMark(Number(b.offset))}` : ""}`;
    case "map":
      return `${printExpr(b.key)} map ${printMapData(b.data, hintOf(b.key), hint)}`;
    case "elem": {
      if (!isObj(b)) return unknown(e);
      return `${printExpr(b.val, hint)}${b.timeout !== undefined ? ` timeout ${b.timeout}s` : ""}${b.comment !== undefined ? ` comment "${b.comment}"` : ""}`;
    }
    default:
      return unknown(e);
  }
}

function printMapData(data: J, keyHint: Hint, valueHint: Hint | "string"): string {
  if (typeof data === "string") return data;
  if (isObj(data) && Array.isArray(data.set)) {
    return `{ ${data.set
      .map((pair) => (Array.isArray(pair) ? `${printExpr(pair[0], keyHint)} : ${valueHint === "string" && typeof pair[1] === "string" ? `"${pair[1]}"` : printExpr(pair[1], valueHint === "string" ? "plain" : valueHint)}` : unknown(pair)))
      .join(", ")} }`;
  }
  return unknown(data);
}

function printVerdict(v: Obj): string | null {
  for (const k of ["accept", "drop", "return", "continue"]) if (k in v) return k;
  for (const k of ["goto", "jump"]) {
    const t = v[k];
    if (isObj(t) && typeof t.target === "string") return `${k} ${t.target}`;
  }
  return null;
}

function printStmt(s: J): string {
  if (typeof s === "string") return s;
  if (!isObj(s)) return unknown(s);
  const verdict = printVerdict(s);
  if (verdict) return verdict;
  const [kind, body] = Object.entries(s)[0] ?? [];
  const b = body as Obj;
  switch (kind) {
    case "match": {
      const op = String(b.op);
      const right = printExpr(b.right, hintOf(b.left));
      return `${printExpr(b.left)}${op === "==" || op === "in" ? "" : ` ${op}`} ${right}`;
    }
    case "mangle":
      return `${printExpr(b.key)} set ${printExpr(b.value, hintOf(b.key))}`;
    case "counter":
      if (body === null) return "counter";
      if (typeof body === "string") return `counter name "${body}"`;
      if (isObj(b) && isObj(b.map)) {
        const m = b.map as Obj;
        return `counter name ${printExpr(m.key)} map ${printMapData(m.data, hintOf(m.key), "string")}`;
      }
      if (isObj(b) && "packets" in b) return "counter";
      return unknown(s);
    case "vmap":
      return `${printExpr(b.key)} vmap ${printMapData(b.data, hintOf(b.key), "plain")}`;
    case "set":
      return `${b.op} ${b.set} { ${printExpr(b.elem)} }`;
    case "dnat":
    case "snat": {
      const to = b.port !== undefined ? `${printExpr(b.addr)}:${printExpr(b.port)}` : printExpr(b.addr);
      return `${kind}${b.family ? ` ${b.family} addr . port` : ""} to ${to}`;
    }
    case "masquerade":
      return "masquerade";
    default:
      return unknown(s);
  }
}

export function printRule(expr: J[], comment?: string): string {
  const text = expr.map(printStmt).join(" ");
  return comment !== undefined ? `${text} comment "${comment}"` : text;
}

const typeText = (t: J) => (Array.isArray(t) ? t.join(" . ") : String(t));

function elementOf(entry: J, keyHint: Hint, dataHint: Hint | "string"): LiveNftElement {
  let keyExpr: J = entry;
  let value: string | null = null;
  if (Array.isArray(entry)) {
    keyExpr = entry[0];
    const v = entry[1];
    value = isObj(v) && printVerdict(v) ? printVerdict(v) : dataHint === "string" && typeof v === "string" ? `"${v}"` : printExpr(v, dataHint === "string" ? "plain" : dataHint);
  }
  let comment: string | undefined;
  let counter: LiveNftElement["counter"];
  if (isObj(keyExpr) && isObj(keyExpr.elem)) {
    const el = keyExpr.elem as Obj;
    if (typeof el.comment === "string") comment = el.comment;
    if (isObj(el.counter)) counter = { packets: Number(el.counter.packets ?? 0), bytes: Number(el.counter.bytes ?? 0) };
    keyExpr = el.val;
  }
  return { key: printExpr(keyExpr, keyHint), value, ...(comment !== undefined ? { comment } : {}), ...(counter ? { counter } : {}) };
}

/** Parses the JSON `nft -j list ...` prints; only objects of natfarm's table are kept. */
export function parseNftJson(text: string, full = true): LiveNft {
  const live = emptyLive(full);
  if (text.trim() === "") return live;
  const doc = JSON.parse(text) as { nftables?: J[] };
  for (const item of doc.nftables ?? []) {
    if (!isObj(item)) continue;
    const [kind, body] = Object.entries(item)[0] ?? [];
    if (!isObj(body) || ("family" in body && body.family !== NFT_FAMILY)) continue;
    const table = kind === "table" ? body.name : body.table;
    if (table !== NFT_TABLE) continue;
    switch (kind) {
      case "table":
        live.exists = true;
        break;
      case "chain":
        live.exists = true;
        live.chains.set(String(body.name), {
          name: String(body.name),
          handle: Number(body.handle),
          base: body.hook ? { type: String(body.type), hook: String(body.hook), prio: Number(body.prio), policy: String(body.policy) } : null,
          rules: live.chains.get(String(body.name))?.rules ?? [],
        });
        break;
      case "rule": {
        const name = String(body.chain);
        let chain = live.chains.get(name);
        if (!chain) live.chains.set(name, (chain = { name, handle: -1, base: null, rules: [] }));
        chain.rules.push({ text: printRule(Array.isArray(body.expr) ? body.expr : [], typeof body.comment === "string" ? body.comment : undefined), handle: Number(body.handle) });
        break;
      }
      case "set":
      case "map": {
        live.exists = true;
        const type = typeText(body.type);
        const data = kind === "map" ? typeText(body.map) : null;
        const keyHint: Hint = type === "mark" ? "mark" : "plain";
        const dataHint = data === "mark" ? "mark" : data === "counter" ? "string" : "plain";
        live.sets.set(String(body.name), {
          name: String(body.name),
          kind,
          type,
          data,
          flags: Array.isArray(body.flags) ? body.flags.map(String) : typeof body.flags === "string" ? [body.flags] : [],
          elements: Array.isArray(body.elem) ? body.elem.map((e) => elementOf(e, keyHint, dataHint)) : [],
        });
        break;
      }
      case "counter":
        live.exists = true;
        live.counters.set(String(body.name), { name: String(body.name), packets: Number(body.packets ?? 0), bytes: Number(body.bytes ?? 0) });
        break;
    }
  }
  return live;
}
