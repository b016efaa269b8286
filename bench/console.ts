/**
 * Console benchmark: how fast the console shows 2,000 and 5,000 farms, how
 * soon a one-farm change is acknowledged and done, and how long it takes
 * from the service call to the kernel. Prints figures, asserts nothing.
 *
 *   npx tsx bench/console.ts [--farms 2000,5000] [--loads 5] [--changes 10] [--hold SECONDS]
 *                            [--dist DIST] [--before DIST] [--only-change-paths]
 *
 * For each size in --farms, in turn: a temporary database gets N farms of 4
 * backends, applied to a throwaway network namespace (never the root
 * namespace); the console's own HTTPS server (scripts/web-server.ts, as
 * `npm start` runs it, with a self-signed certificate made in the temporary
 * directory) serves the build in tmp/bench-build (rebuilt when older than
 * the sources) on 127.0.0.1 and a free port, reaching the kernel through an
 * agent as under `npm start`, and headless Chromium loads the pages:
 *   - farms page: navigation start until the first farm rows are on screen;
 *   - live tables page: navigation start until the first rule rows are shown;
 * each the median of `--loads` loads in fresh browser contexts (after one
 * warm-up load). Then:
 *   - the server's answer (the whole document, streamed parts included) of
 *     a farm page and of the live tables page, median of `--loads`;
 *   - a weight change on a farm page in Chromium, timed inside the page from
 *     the Save button's click event: to the first toast in the DOM (the
 *     acknowledgement: "Saving backend …" where the console shows one, else
 *     the result itself) and to the success toast (the result), with the
 *     server action's first and last byte; median of `--changes`;
 *   - the one-farm change as the service alone (service.updateBackend, a
 *     weight) until the kernel holds the new rules, in this process and
 *     through an agent, median of `--changes`.
 * Server, namespace and database are always cleaned up.
 *
 * `--before DIST` serves a second build (say of the commit before a change,
 * `NATFARM_NEXT_DIST_DIR=DIST npx next build` in a checkout of it; DIST
 * relative to this checkout) beside the current one, on the same database,
 * namespace and agent: the farm and live tables pages' server answers and
 * the weight change then alternate between the two servers, sample by
 * sample, so a load that comes and goes weighs on both alike (a paired
 * comparison). `--only-change-paths` skips the farms list, the browser page
 * loads and the service-only change.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { importFarms } from "../lib/service/farm-io.ts";
import { createFarmService } from "../lib/service/farm-service.ts";
import { agentKernel } from "../lib/agent/client.ts";
import { login, sessionCookieName } from "../lib/auth/sessions.ts";
import { createUser } from "../lib/auth/users.ts";
import { startAgent } from "../tests/helpers/agent.ts";
import { disconnectPrisma, openDatabase } from "../lib/db/client.ts";
import { FarmListSchema } from "../lib/farms/schema.ts";
import { runPrivileged } from "../lib/privileged/run.ts";
import { request } from "../lib/web/client.ts";
import { benchFarms, machine, median, ms } from "./common.ts";
import type { Target } from "../lib/privileged/target.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
/** `--farms 2000,5000`: each size in turn, with its own database, namespace, agent and servers. */
const SIZES = arg("farms", "2000,5000").split(",").map(Number);
const LOADS = Number(arg("loads", "5"));
const CHANGES = Number(arg("changes", "10"));
/** Keep the server up this many seconds after the figures, for a look with other tools. */
const HOLD = Number(arg("hold", "0"));
const BEFORE = process.argv.includes("--before") ? arg("before", "") : "";
const ONLY_CHANGE_PATHS = process.argv.includes("--only-change-paths");
const root = path.resolve(import.meta.dirname, "..");
/** `--dist DIR`: serve that build as is (e.g. the e2e tests' .next-<letter>); otherwise tmp/bench-build, rebuilt when stale. */
const GIVEN_DIST = process.argv.includes("--dist") ? arg("dist", "") : "";
const DIST = GIVEN_DIST || "tmp/bench-build";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");



/** Same rule as `npm start`: a build older than any source is rebuilt. */
function buildIsFresh(dist: string): boolean {
  let newest = 0;
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) if (e !== "node_modules" && e !== "generated" && !e.startsWith(".")) walk(path.join(p, e));
    } else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["app", "components", "lib", "public", "next.config.js", "postcss.config.mjs", "package.json", "tsconfig.json", "tsconfig.app.json"]) walk(path.join(root, p));
  const id = statSync(path.join(root, dist, "BUILD_ID"), { throwIfNoEntry: false });
  return !!id && id.mtimeMs >= newest;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Built once per run, whatever the number of sizes. */
let built = false;

/** The bench's logged-in session: an admin made in the bench's database, and its cookie. */
let sessionCookie = { name: "", value: "" };
const cookieHeader = () => ({ cookie: `${sessionCookie.name}=${sessionCookie.value}` });

async function waitReady(base: string, server: ChildProcess, ca: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the web server exited with code ${server.exitCode}`);
    try {
      if ((await request(`${base}/api/farms/health`, { ca: ca(), timeoutMs: 30_000, headers: cookieHeader() })).status === 200) return;
    } catch {
      /* not listening yet, or the certificate not made yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("the web server did not answer within 120 s");
}

/** Navigation start to the first row matching `selector`, in a fresh context; plus the load event. */
async function timeLoad(browser: Browser, url: string, selector: string): Promise<{ rows: number; load: number }> {
  // The console's self-signed certificate, made for this run.
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
  await ctx.addCookies([{ ...sessionCookie, url: new URL(url).origin, httpOnly: true, secure: true, sameSite: "Strict" }]);
  try {
    const page = await ctx.newPage();
    const t0 = performance.now();
    await page.goto(url, { waitUntil: "commit" });
    await page.locator(selector).first().waitFor({ state: "visible", timeout: 60_000 });
    const rows = performance.now() - t0;
    await page.waitForLoadState("load");
    const load = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
      return nav ? nav.loadEventEnd : 0;
    });
    return { rows, load };
  } finally {
    await ctx.close();
  }
}

async function main() {
  for (const n of SIZES) {
    console.log(`== ${n} farms`);
    console.log(`machine: ${machine()}`);
    await runSize(n);
  }
}

async function runSize(N: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "natfarm-bench-console-"));
  const url = `file:${path.join(dir, "console.db")}`;
  const ns = `nfbc${randomBytes(3).toString("hex")}`;
  const target: Target = { kind: "netns", name: ns };
  const servers: ChildProcess[] = [];
  let stopAgent = async () => {};
  let browser: Browser | null = null;
  let nsCreated = false;
  // Interrupted (Ctrl-C, a timeout's SIGTERM): the finally below would not run.
  const onSignal = (sig: NodeJS.Signals) => {
    for (const server of servers) {
      try {
        if (server.pid) process.kill(-server.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    if (nsCreated) spawnSync("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
    process.exit(sig === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await runPrivileged("ip", ["netns", "add", ns]);
    nsCreated = true;
    const db = await openDatabase(url);
    let t = performance.now();
    await importFarms(db, FarmListSchema.parse(benchFarms(N)));
    const service = createFarmService({ db, target });
    await createUser(db, "bench", "admin", "bench-password-1");
    const session = await login(db, { name: "bench", password: "bench-password-1", address: "127.0.0.1" });
    if (!session.ok) throw new Error(`bench login: ${session.message}`);
    sessionCookie = { name: sessionCookieName(true), value: session.token };
    const applied = await service.applyAll("bench");
    if (!applied.ok) throw new Error(applied.message);
    console.log(`setup: ${N} farms of 4 backends in ${path.join(dir, "console.db")}, applied to netns:${ns} (${ms(performance.now() - t)}): ${applied.message}`);

    if (!GIVEN_DIST && !buildIsFresh(DIST) && !built) {
      built = true;
      console.log(`building the console into ${DIST} (next build)…`);
      t = performance.now();
      const b = spawnSync(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build"], {
        cwd: root,
        env: { ...process.env, NATFARM_NEXT_DIST_DIR: DIST, NEXT_TELEMETRY_DISABLED: "1" },
        encoding: "utf8",
      });
      if (b.status !== 0) throw new Error(`next build failed:\n${b.stdout}\n${b.stderr}`);
      console.log(`built in ${ms(performance.now() - t)}`);
    }

    // The web servers reach the kernel through an agent, as under npm start (the console runs unprivileged).
    const agentSocket = path.join(dir, "agent", "agent.sock");
    const agent = await startAgent({ socket: agentSocket, target, logFile: path.join(dir, "agent.log") });
    stopAgent = async () => {
      stopAgent = async () => {};
      await agent.stop();
    };
    const startServer = async (dist: string, label: string) => {
      const port = await freePort();
      const base = `https://127.0.0.1:${port}`;
      const tlsDir = path.join(dir, `tls-${label}`);
      const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts", "web-server.ts")], {
        cwd: root,
        env: {
          ...process.env,
          NATFARM_NEXT_DIST_DIR: dist,
          NATFARM_DATABASE_URL: url,
          NATFARM_TARGET: `netns:${ns}`,
          NEXT_TELEMETRY_DISABLED: "1",
          NATFARM_HOST: "127.0.0.1",
          PORT: String(port),
          NATFARM_TLS_DIR: tlsDir,
          NATFARM_AGENT_SOCKET: agentSocket,
          // Where each server action's time went, on stderr (lib/actions/authz.ts).
          NATFARM_ACTION_TIMING: "1",
        },
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      });
      servers.push(child);
      // Its log (the action timings among it) on this stderr, each line saying which build's server wrote it.
      let partial = "";
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        for (const l of lines) process.stderr.write(`[${label}] ${l}\n`);
      });
      let ca: string | undefined;
      const readCa = () => {
        try {
          ca ??= readFileSync(path.join(tlsDir, "cert.pem"), "utf8");
        } catch {
          /* not made yet */
        }
        return ca;
      };
      await waitReady(base, child, readCa);
      const get = async (p: string) => (await request(`${base}${p}`, { ca: readCa(), headers: cookieHeader() })).body;
      return { label, base, get };
    };
    const current = await startServer(DIST, "current");
    // The paired comparison: the build of --before, on the same database and namespace.
    const builds = BEFORE ? [current, await startServer(BEFORE, "before")] : [current];
    const tag = (b: { label: string }) => (builds.length > 1 ? ` [${b.label}]` : "");
    const { base, get } = current;

    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
    if (!ONLY_CHANGE_PATHS) {
      // The server's part, without a browser: time to the whole HTML and its size.
      const server5: number[] = [];
      let bytes = 0;
      for (let i = 0; i < LOADS + 1; i++) {
        t = performance.now();
        const html = await get("/");
        if (i > 0) server5.push(performance.now() - t);
        bytes = Buffer.byteLength(html);
      }
      t = performance.now();
      const tablesJson = await get("/api/tables");
      const tablesMs = performance.now() - t;
      console.log(`farms page HTML (server, whole document): median ${ms(median(server5))} [${list(server5)}], ${(bytes / 1024).toFixed(0)} KB`);
      console.log(`/api/tables (the live tables' data): ${ms(tablesMs)}, ${(Buffer.byteLength(tablesJson) / 1024).toFixed(0)} KB`);

      const FARM_ROW = '[role="table"][aria-label="Farms"] [role="row"][aria-rowindex="2"]';
      const RULE_ROW = 'table[aria-label^="mangle NATFARM-"] tbody tr';
      const pages = [
        { name: "farms page, first farm rows", url: `${base}/`, selector: FARM_ROW },
        { name: "live tables page, first rule rows", url: `${base}/tables`, selector: RULE_ROW },
      ];
      for (const p of pages) {
        await timeLoad(browser, p.url, p.selector); // warm-up: server JIT, build caches
        const rows: number[] = [];
        const loads: number[] = [];
        for (let i = 0; i < LOADS; i++) {
          const r = await timeLoad(browser, p.url, p.selector);
          rows.push(r.rows);
          loads.push(r.load);
        }
        console.log(`${p.name}: median ${ms(median(rows))} [${list(rows)}] (target ≤ 1000 ms); load event median ${ms(median(loads))}`);
      }
    }

    // Server answer (whole document, streamed parts included) of the farm page and the live tables page.
    for (const p of [
      { name: "farm page", path: `/farms/f${Math.floor(N / 2)}` },
      { name: "live tables page", path: "/tables" },
    ]) {
      const times = new Map(builds.map((b) => [b.label, [] as number[]]));
      for (let i = 0; i < LOADS + 1; i++) {
        for (const b of i % 2 ? [...builds].reverse() : builds) {
          t = performance.now();
          await b.get(p.path);
          if (i > 0) times.get(b.label)!.push(performance.now() - t);
        }
      }
      for (const b of builds) {
        const xs = times.get(b.label)!;
        console.log(`${p.name} HTML (server, whole document ${p.path})${tag(b)}: median ${ms(median(xs))} [${list(xs)}] (target ≤ 200 ms)`);
      }
    }

    // Click to feedback: a one-farm weight change on the farm page. Timed in the page (the click event to the DOM
    // change that shows the toast, before its paint), so the bench's round trips to the browser add nothing.
    {
      const contexts = await Promise.all(
        builds.map(async (b) => {
          const ctx = await browser!.newContext({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
          await ctx.addCookies([{ ...sessionCookie, url: b.base, httpOnly: true, secure: true, sameSite: "Strict" }]);
          return { b, ctx, page: await ctx.newPage(), ack: [] as number[], done: [] as number[], firstByte: [] as number[], lastByte: [] as number[] };
        }),
      );
      try {
        for (let i = 0; i < CHANGES + 1; i++) {
          for (const [k, c] of (i % 2 ? [...contexts].reverse() : contexts).entries()) {
            const name = `f${(i * 104729 + 3 + k * 7) % N}`;
            const row = (await service.getFarm(name))!;
            const b = row.backends[0]!;
            const who = b.port ? `${b.ip}:${b.port}` : b.ip;
            const page = c.page;
            await page.goto(`${c.b.base}/farms/${name}`);
            // As an operator does: the page has loaded what it reads on arrival (the farm's drift, its traffic
            // graph) before Save is clicked; bounded, the live poll keeps the network from ever being quiet for long.
            await page.waitForLoadState("networkidle", { timeout: 5_000 }).catch(() => {});
            const table = page.getByRole("table", { name: `Backends of ${name}` });
            await table.getByRole("button", { name: `Edit backend ${who}` }).click();
            await table.getByLabel(`Weight of backend ${who}`, { exact: true }).fill(String((b.weight % 100) + 1));
            // acknowledgement: the first toast of any kind (a "Saving…" one, or the result where there is none);
            // done: the success toast.
            await page.evaluate(() => {
              const w = window as unknown as { __bench: { click?: number; ack?: number; done?: number } };
              w.__bench = {};
              document.addEventListener("click", (e) => void ((e.target as Element).closest('button[aria-label^="Save backend"]') && (w.__bench.click ??= performance.now())), { capture: true });
              new MutationObserver(() => {
                const t = performance.now();
                if (w.__bench.click === undefined) return;
                if (w.__bench.ack === undefined && document.querySelector("[data-sonner-toast]")) w.__bench.ack = t;
                if (w.__bench.done === undefined && document.querySelector('[data-sonner-toast][data-type="success"]')) w.__bench.done = t;
              }).observe(document.body, { subtree: true, childList: true, attributes: true });
            });
            const toast = page.locator('[data-sonner-toast][data-type="success"]');
            const posted = page.waitForResponse((r) => r.request().method() === "POST" && r.url().includes(`/farms/${name}`), { timeout: 30_000 });
            await table.getByRole("button", { name: `Save backend ${who}` }).click();
            await toast.first().waitFor({ state: "visible", timeout: 30_000 });
            const t = await page.evaluate(() => (window as unknown as { __bench: { click: number; ack: number; done: number } }).__bench);
            // The server action's answer: first byte (the action's result comes first) and last (the page it re-rendered).
            const res = await posted;
            // Bounded: the end of the re-rendered page is a figure, not a condition of the next change.
            await Promise.race([res.finished(), new Promise((r) => setTimeout(r, 15_000))]);
            const timing = res.request().timing();
            if (i > 0) {
              c.ack.push(t.ack - t.click);
              c.done.push(t.done - t.click);
              c.firstByte.push(timing.responseStart - timing.requestStart);
              if (timing.responseEnd >= 0) c.lastByte.push(timing.responseEnd - timing.requestStart);
            }
          }
        }
      } finally {
        for (const c of contexts) await c.ctx.close();
      }
      for (const c of contexts) {
        console.log(`click to acknowledgement (weight change on the farm page, Chromium: first toast shown)${tag(c.b)}: median ${ms(median(c.ack))} [${list(c.ack)}] (target ≤ 300 ms)`);
        console.log(`click to result (the success toast)${tag(c.b)}: median ${ms(median(c.done))} [${list(c.done)}]`);
        console.log(`  its server action's answer${tag(c.b)}: first byte median ${ms(median(c.firstByte))} [${list(c.firstByte)}], last byte median ${ms(median(c.lastByte))} [${list(c.lastByte)}]`);
      }
    }
    if (ONLY_CHANGE_PATHS) {
      await disconnectPrisma(url);
      return;
    }

    // The same change through the service, with the kernel in this process and through an agent (as npm start runs it), alternating.
    try {
      const ways = [
        { name: "direct", service, changes: [] as number[] },
        { name: "through the agent", service: createFarmService({ db, target, kernel: agentKernel(agentSocket) }), changes: [] as number[] },
      ];
      for (let r = 0; r < CHANGES; r++) {
        for (const way of r % 2 ? [...ways].reverse() : ways) {
          const name = `f${(r * 7919 + (way.name === "direct" ? 0 : 1)) % N}`;
          const row = (await way.service.getFarm(name))!;
          const b = row.backends[0]!;
          t = performance.now();
          const res = await way.service.updateBackend(name, b.mark, { weight: (b.weight % 100) + 1 });
          const took = performance.now() - t;
          if (!res.ok || res.outcome !== "applied") throw new Error(`one-farm change (${way.name}): ${res.message}`);
          way.changes.push(took);
        }
      }
      const direct = median(ways[0]!.changes);
      for (const way of ways) {
        const m = median(way.changes);
        const hop = way.name === "direct" ? "" : `, hop ${(100 * (m / direct - 1)).toFixed(1)} % (target ≤ 10 %)`;
        console.log(`one-farm change (service.updateBackend weight → kernel, ${way.name}): median ${ms(m)} [${list(way.changes)}] (target ≤ 150 ms)${hop}`);
      }
    } finally {
      await stopAgent();
    }
    if (HOLD > 0) {
      console.log(`holding ${base} for ${HOLD} s`);
      await new Promise((r) => setTimeout(r, HOLD * 1000));
    }
    await disconnectPrisma(url);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await browser?.close().catch(() => {});
    for (const server of servers) {
      if (!server.pid || server.exitCode !== null) continue;
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    await stopAgent().catch(() => {});
    if (nsCreated) await runPrivileged("ip", ["netns", "del", ns], { allowFailure: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
