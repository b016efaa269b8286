import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSetupToken, SETUP_REFUSED } from "../../lib/auth/setup.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { ensureBuild, freePort, startWebServer, type WebServer } from "./harness.ts";

/**
 * The first administrator on a fresh database: the one-time setup link
 * (the token npm start prints, made here with the same function) opens a
 * form that creates an admin and logs them in; the link then works no more.
 */
let dir = "";
/** SQLite, or PostgreSQL in vitest's postgresql project */
let tdb: TestDatabase;
let dbUrl = "";
let web: WebServer;
let browser: Browser;
let base = "";
let token = "";

beforeAll(async () => {
  await ensureBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-e2e-setup-"));
  tdb = await createTestDatabase("setup");
  dbUrl = tdb.url;
  await migrate(dbUrl);
  token = (await makeSetupToken(getPrisma(dbUrl)))!;
  await disconnectPrisma(dbUrl);
  const port = await freePort();
  base = `https://127.0.0.1:${port}`;
  web = await startWebServer({
    logFile: path.join(dir, "server.log"),
    env: { PORT: String(port), NATFARM_DATABASE_URL: dbUrl, NATFARM_TARGET: "none", NATFARM_TLS_DIR: path.join(dir, "tls") },
  });
  browser = await chromium.launch({
    executablePath: process.env.NATFARM_E2E_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await tdb?.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

const users = () => tdb.query("SELECT name, role FROM User");

describe("the first administrator", () => {
  it("a wrong token gets no form", async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${base}/setup?token=wrong`);
    await page.getByRole("alert").filter({ hasText: SETUP_REFUSED }).waitFor();
    expect(await page.getByRole("button").count()).toBe(0);
    await context.close();
  });

  it("the link creates an admin and logs them in, once", async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${base}/setup?token=${token}`);
    await page.getByLabel("Administrator's user name").fill("first");
    await page.getByLabel("Password", { exact: true }).fill("first admin password");
    await page.getByLabel("Password again").fill("first admin password");
    await page.getByRole("button", { name: "Create administrator and log in" }).click();
    await page.waitForURL(`${base}/`);
    expect(await page.getByTestId("signed-in-as").textContent()).toMatch(/first · admin/);
    expect(users()).toEqual([{ name: "first", role: "admin" }]);
    await context.close();

    const again = await browser.newContext({ ignoreHTTPSErrors: true });
    const p2 = await again.newPage();
    await p2.goto(`${base}/setup?token=${token}`);
    await p2.getByRole("alert").filter({ hasText: SETUP_REFUSED }).waitFor();
    expect(await p2.getByRole("button").count()).toBe(0);
    await p2.goto(`${base}/`);
    expect(new URL(p2.url()).pathname).toBe("/login");
    await again.close();
    expect(users()).toEqual([{ name: "first", role: "admin" }]);
  });
});
