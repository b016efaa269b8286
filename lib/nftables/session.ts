import fs from "node:fs";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { PrivilegedCommandError, runPrivileged, type Runner, type RunOptions, type RunResult } from "../privileged/run.ts";
import { formatTarget, type Target } from "../privileged/target.ts";

/**
 * A long-lived libnftables session per target, for the agent: nft's own
 * library called in-process instead of one `ip netns exec NS nft -f -`
 * process per change. A one-farm change through `nft -f` was two program
 * starts and a fresh nft context (≈15 ms before nft did anything, at any
 * size) plus nft's cache fetch; a warm context pays neither.
 *
 * libnftables talks to the netns of the thread that calls it, so each
 * namespace target gets a worker thread that enters it once (setns(2) on
 * itself, through koffi) and keeps its nft context warm; the agent's main
 * thread never changes namespace. Each transaction is still ONE
 * `nft_run_cmd_from_filename` of the whole payload — one netlink batch, all
 * or nothing, exactly what `nft -f` runs — and nft's error text comes back
 * as `nft -f -` prints it (the payload's file name reads `/dev/stdin`).
 *
 * Only two commands go through a session, the ones natfarm's engine runs:
 * `nft -f -` (a transaction) and `nft -j list table ip natfarm` (the
 * read-back). Everything else, and everything when the library cannot be
 * loaded, runs as before through `runPrivileged`.
 */

export interface NftSessionAnswer {
  rc: number;
  out: string;
  err: string;
}

/** One warm nft context in one namespace. */
export interface NftSession {
  /** False once the session has ended (closed, timed out, crashed): the next call opens a new one. */
  readonly alive: boolean;
  /** `json`: a list command with JSON output (`nft -j`); otherwise a transaction read as `nft -f -` reads it. */
  run(text: string, opts: { json: boolean; timeoutMs: number }): Promise<NftSessionAnswer>;
  close(): Promise<void>;
}

export class NftSessionUnavailable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "NftSessionUnavailable";
  }
}

/** Opens a session in a target; throws NftSessionUnavailable when this machine cannot (no library, no koffi, no namespace). */
export type NftSessionFactory = (target: Target) => Promise<NftSession>;

/**
 * What identifies a target's namespace right now (device and inode of
 * /run/netns/NAME), or null when there is none: a namespace deleted and
 * made again under the same name is another namespace, and a session still
 * inside the old one must not serve it.
 */
export type NamespaceIdentity = (target: Target) => string | null;

export const netnsPath = (name: string) => `/run/netns/${name}`;

export function namespaceIdentity(target: Target): string | null {
  if (target.kind === "host") return "host";
  try {
    const s = fs.statSync(netnsPath(target.name));
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

const LIST_ARGS = "-j list table ip natfarm";
const APPLY_ARGS = "-f -";

export interface NftSessionsOptions {
  factory?: NftSessionFactory;
  identity?: NamespaceIdentity;
  /** Everything the sessions do not serve (and all of it when they cannot be opened). */
  fallback?: Runner;
  /** Which way each target is served, once per session (the agent logs it). */
  onServe?: (event: { target: string; via: "libnftables" | "nft -f"; reason?: string }) => void;
}

/**
 * The sessions of one process, by target, as a Runner the nftables engine
 * uses like runPrivileged: same arguments, same results (exit code, stdout,
 * stderr), so the applier's atomicity, error and retry logic is unchanged.
 */
export class NftSessions {
  private readonly open = new Map<string, { id: string | null; session: Promise<NftSession> }>();
  private unavailable: string | null = null;
  private readonly factory: NftSessionFactory;
  private readonly identity: NamespaceIdentity;
  private readonly fallback: Runner;
  private readonly onServe: NonNullable<NftSessionsOptions["onServe"]>;

  constructor(opts: NftSessionsOptions = {}) {
    this.factory = opts.factory ?? workerSession;
    this.identity = opts.identity ?? namespaceIdentity;
    this.fallback = opts.fallback ?? runPrivileged;
    this.onServe = opts.onServe ?? (() => {});
  }

  /** Why no session can be opened on this machine (the library or koffi is missing), or null. */
  get unavailableReason(): string | null {
    return this.unavailable;
  }

  readonly run: Runner = async (program, args, options: RunOptions = {}): Promise<RunResult> => {
    const joined = args.join(" ");
    const kind = program === "nft" ? (joined === APPLY_ARGS && options.input !== undefined ? "apply" : joined === LIST_ARGS ? "list" : null) : null;
    if (!kind || this.unavailable) return this.fallback(program, args, options);
    const target = options.target ?? { kind: "host" as const };
    const session = await this.sessionFor(target);
    if (!session) {
      if (target.kind === "netns" && this.identity(target) === null) {
        return { stdout: "", stderr: `Cannot open network namespace "${target.name}": No such file or directory\n`, exitCode: 1 };
      }
      return this.fallback(program, args, options);
    }
    // A session that ended mid-call is like an nft process that was killed: a failure whose effect is not known.
    const a = await session.run(kind === "apply" ? options.input! : "list table ip natfarm", { json: kind === "list", timeoutMs: options.timeoutMs ?? 30_000 }).catch((e: Error) => ({ rc: -1, out: "", err: `${e.message}\n` }));
    if (a.rc !== 0 && !options.allowFailure) throw new PrivilegedCommandError(["nft", ...args], a.rc, a.err, false);
    return { stdout: a.out, stderr: a.err, exitCode: a.rc };
  };

  private async sessionFor(target: Target): Promise<NftSession | null> {
    const key = formatTarget(target);
    const id = this.identity(target);
    const held = this.open.get(key);
    if (held && held.id === id) {
      const s = await held.session.catch(() => null);
      if (s?.alive) return s;
    }
    if (held) {
      // The namespace went away or is another one now: the old session must not write to it (nor keep it alive).
      this.open.delete(key);
      void held.session.then((s) => s.close(), () => {});
    }
    if (id === null) return null;
    const session = this.factory(target);
    const entry = { id, session };
    this.open.set(key, entry);
    try {
      const s = await session;
      this.onServe({ target: key, via: "libnftables" });
      return s;
    } catch (e) {
      if (this.open.get(key) === entry) this.open.delete(key);
      const reason = e instanceof Error ? e.message : String(e);
      // No library or no koffi: no target can have a session; a namespace that vanished meanwhile is that target's problem only.
      if (e instanceof NftSessionUnavailable) this.unavailable = reason;
      this.onServe({ target: key, via: "nft -f", reason });
      return null;
    }
  }

  /** Drops the session of a target whose namespace is gone (a periodic sweep: an idle session must not keep a deleted namespace alive). */
  sweep(): void {
    for (const [key, held] of this.open) {
      const target: Target = key === "host" ? { kind: "host" } : { kind: "netns", name: key.slice("netns:".length) };
      if (this.identity(target) === held.id) continue;
      this.open.delete(key);
      void held.session.then((s) => s.close(), () => {});
    }
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((h) => h.session.then((s) => s.close(), () => {})));
  }
}

/**
 * Sessions for this process's nftables engine: its default nft runner
 * becomes the sessions' (lib/nftables/apply.ts), and a sweep every 2 s
 * drops sessions whose namespace is gone, so that an idle session never
 * keeps a deleted namespace alive.
 */
export function enableNftSessions(opts: NftSessionsOptions = {}): { sessions: NftSessions; close(): Promise<void> } {
  const sessions = new NftSessions(opts);
  const sweep = setInterval(() => sessions.sweep(), 2000);
  sweep.unref();
  return {
    sessions,
    async close() {
      clearInterval(sweep);
      await sessions.close();
    },
  };
}

/**
 * The worker: plain JavaScript (it is evaluated, so it runs the same from
 * the TypeScript sources and from the CLI's bundle). It enters the
 * namespace, checks that it is in it, opens one nft context with output and
 * errors buffered, and answers one request at a time.
 */
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
const koffi = require(workerData.koffi);
const CLONE_NEWNET = 0x40000000;
const JSON_FLAG = 1 << 4;
(function main() {
try {
  const libc = koffi.load("libc.so.6");
  const setns = libc.func("int setns(int fd, int nstype)");
  if (workerData.netns) {
    const fd = fs.openSync(workerData.netns, "r");
    const want = fs.fstatSync(fd);
    const rc = setns(fd, CLONE_NEWNET);
    const errno = koffi.errno();
    fs.closeSync(fd);
    if (rc !== 0) throw new Error("setns(" + workerData.netns + ") failed: errno " + errno);
    const now = fs.statSync("/proc/thread-self/ns/net");
    if (now.ino !== want.ino || now.dev !== want.dev) throw new Error("this thread is not in " + workerData.netns + " after setns");
  }
  let lib;
  try {
    lib = koffi.load("libnftables.so.1");
  } catch (e) {
    parentPort.postMessage({ ready: false, unavailable: true, error: "libnftables.so.1 cannot be loaded: " + e.message });
    return;
  }
  const f = {
    ctxNew: lib.func("void *nft_ctx_new(uint32_t flags)"),
    bufferOutput: lib.func("int nft_ctx_buffer_output(void *ctx)"),
    bufferError: lib.func("int nft_ctx_buffer_error(void *ctx)"),
    output: lib.func("const char *nft_ctx_get_output_buffer(void *ctx)"),
    error: lib.func("const char *nft_ctx_get_error_buffer(void *ctx)"),
    setFlags: lib.func("void nft_ctx_output_set_flags(void *ctx, uint32_t flags)"),
    fromBuffer: lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)"),
    fromFile: lib.func("int nft_run_cmd_from_filename(void *ctx, const char *file)"),
    ctxFree: lib.func("void nft_ctx_free(void *ctx)"),
  };
  const ctx = f.ctxNew(0);
  if (!ctx) throw new Error("nft_ctx_new failed");
  if (f.bufferOutput(ctx) !== 0 || f.bufferError(ctx) !== 0) throw new Error("nft_ctx_buffer_output/error failed");
  const dir = fs.mkdtempSync(path.join(workerData.tmp, "natfarm-nft-"));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, "payload.nft");
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    f.ctxFree(ctx);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  parentPort.on("message", (m) => {
    if (m.close) {
      close();
      parentPort.close();
      return;
    }
    let rc, out, err;
    try {
      if (m.json) {
        f.setFlags(ctx, JSON_FLAG);
        rc = f.fromBuffer(ctx, m.text);
        f.setFlags(ctx, 0);
      } else {
        // A file, as nft -f reads one: the same parser path, and error locations that name a line of it.
        fs.writeFileSync(file, m.text, { mode: 0o600 });
        rc = f.fromFile(ctx, file);
        fs.rmSync(file, { force: true });
      }
      out = f.output(ctx) || "";
      err = (f.error(ctx) || "").split(file + ":").join("/dev/stdin:");
    } catch (e) {
      rc = -1;
      out = "";
      err = "libnftables call failed: " + e.message + "\n";
    }
    parentPort.postMessage({ id: m.id, rc: rc === 0 ? 0 : 1, out: m.json && rc === 0 && out && !out.endsWith("\n") ? out + "\n" : out, err });
  });
  parentPort.postMessage({ ready: true });
} catch (e) {
  parentPort.postMessage({ ready: false, error: e.message });
}
})();
`;

let koffiPath: string | null | undefined;
function resolveKoffi(): string | null {
  if (koffiPath === undefined) {
    try {
      koffiPath = createRequire(import.meta.url).resolve("koffi");
    } catch {
      koffiPath = null;
    }
  }
  return koffiPath;
}

/** The real session: a worker thread in the target's namespace. */
export async function workerSession(target: Target): Promise<NftSession> {
  const koffi = resolveKoffi();
  if (!koffi) throw new NftSessionUnavailable("the koffi package is not installed");
  const netns = target.kind === "netns" ? netnsPath(target.name) : null;
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { koffi, netns, tmp: process.env.TMPDIR || "/tmp" }, stdout: false, stderr: false });
  worker.unref();
  const pending = new Map<number, { resolve: (a: NftSessionAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let dead: Error | null = null;
  const fail = (e: Error) => {
    dead ??= e;
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(dead);
    }
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    const first = (m: { ready?: boolean; unavailable?: boolean; error?: string }) => {
      worker.off("error", early);
      if (m.ready) return resolve();
      void worker.terminate();
      reject(m.unavailable ? new NftSessionUnavailable(m.error ?? "libnftables is not available") : new Error(`no nft session in ${formatTarget(target)}: ${m.error}`));
    };
    const early = (e: Error) => reject(new Error(`no nft session in ${formatTarget(target)}: ${e.message}`));
    worker.once("message", first);
    worker.once("error", early);
  });
  worker.on("message", (m: { id: number } & NftSessionAnswer) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    p.resolve({ rc: m.rc, out: m.out, err: m.err });
  });
  worker.on("error", (e) => fail(e));
  worker.on("exit", (code) => fail(new Error(`the nft session of ${formatTarget(target)} ended (exit code ${code})`)));
  let next = 1;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    get alive() {
      return dead === null;
    },
    run(text, opts) {
      // One request at a time, as the worker answers them: a timeout ends the worker, which fails the ones behind it.
      const answer = chain.then(
        () =>
          new Promise<NftSessionAnswer>((resolve, reject) => {
            if (dead) return reject(dead);
            const id = next++;
            const timer = setTimeout(() => {
              pending.delete(id);
              resolve({ rc: -1, out: "", err: `nft timed out after ${Math.round(opts.timeoutMs / 1000)} s\n` });
              fail(new Error(`the nft session of ${formatTarget(target)} timed out`));
              void worker.terminate();
            }, opts.timeoutMs);
            pending.set(id, { resolve, reject, timer });
            worker.postMessage({ id, text, json: opts.json });
          }),
      );
      chain = answer.catch(() => {});
      return answer;
    },
    async close() {
      if (dead) return;
      fail(new Error(`the nft session of ${formatTarget(target)} was closed`));
      worker.postMessage({ close: true });
      await Promise.race([new Promise((r) => worker.once("exit", r)), new Promise((r) => setTimeout(r, 1000).unref())]);
      await worker.terminate();
    },
  };
}
