import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labEnsureVip, labTraffic } from "../../lib/lab/index.ts";
import { readNft } from "../../lib/nftables/index.ts";
import { runPrivileged } from "../../lib/privileged/run.ts";
import { disconnectPrisma, openDatabase } from "../../lib/db/client.ts";
import { directKernel } from "../../lib/kernel/direct.ts";
import { withEngine } from "../../lib/kernel/port.ts";
import { createTrafficSampler } from "../../lib/service/traffic-sampler.ts";
import { namespacesOf, startConsole, type Console } from "./harness.ts";
import { expectCount, expectText, expectVisible } from "./ui-expect.ts";

/**
 * The console on the nftables engine (NATFARM_ENGINE=nftables), through the
 * same agent and server as console.test.ts: the header names the engine, a
 * farm created in the UI lands in `table ip natfarm` (and nowhere in
 * iptables), its page shows the nft commands natfarm wrote, and the live
 * tables page lists the table's chains and maps with the farm's elements
 * linked to it and the backends' counters rising with lab traffic.
 */
const VIP = "198.51.100.251";
const FARM = "nweb";
const BACKENDS = [
  { ip: "203.0.113.10", port: 80 },
  { ip: "203.0.113.11", port: 80 },
];

let c: Console;
let page: Page;
const url = (p: string) => `${c.baseUrl}${p}`;

beforeAll(async () => {
  c = await startConsole({ backends: 2, env: { NATFARM_ENGINE: "nftables" }, log: (m) => console.log(`[e2e-nft] ${m}`) });
  page = c.page;
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const labName = c.lab.name;
  await c.stop();
  expect(namespacesOf(labName), "namespaces left behind").toEqual([]);
}, 120_000);

describe("the console on nftables", () => {
  it("names the engine, writes a new farm into table ip natfarm only, and shows its nft commands", async () => {
    await page.goto(url("/"));
    await expectText(page.getByTestId("active-engine"), "nftables");
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill(FARM);
    await form.getByLabel("Virtual IP").fill(VIP);
    await form.getByLabel("Ports", { exact: true }).fill("80");
    await form.getByLabel("Protocol").selectOption("tcp");
    await form.getByLabel("NAT type").selectOption("nat");
    for (const [i, b] of BACKENDS.entries()) {
      if (i > 0) await form.getByRole("button", { name: "Add backend row" }).click();
      const row = form.getByRole("group", { name: `Backend ${i + 1}` });
      await row.getByLabel(`IP address of backend ${i + 1}`).fill(b.ip);
      await row.getByLabel(`Port of backend ${i + 1}`).fill(String(b.port));
      await row.getByLabel(`Weight of backend ${i + 1}`).fill("1");
    }
    await form.getByRole("button", { name: "Create farm" }).click();
    const link = page.getByRole("table", { name: "Farms" }).getByRole("link", { name: FARM, exact: true });
    await expectVisible(link, { timeout: 60_000 });

    const live = await readNft(c.target);
    expect(live.chains.has(`farm_${FARM}`)).toBe(true);
    const marks = (live.sets.get("dnat_port")?.elements ?? []).filter((e) => e.comment?.startsWith(`FARM_${FARM}_`)).map((e) => `${e.key} ${e.comment} ${e.value}`);
    expect(marks).toHaveLength(2);
    const ipt = (await runPrivileged("iptables-save", [], { target: c.target })).stdout;
    expect(ipt).not.toMatch(/NATFARM|FARM_/);
    expect(c.query<{ applyState: string }>("SELECT applyState FROM Farm")).toEqual([{ applyState: "applied" }]);

    await link.click();
    const rules = await page.getByRole("region", { name: "Generated rules" }).locator("pre").innerText();
    expect(rules).toContain(`add chain ip natfarm farm_${FARM}`);
    for (const m of marks) {
      const [key, comment, ...value] = m.split(" ");
      expect(rules).toContain(`add element ip natfarm dnat_port { ${key} comment "${comment}" : ${value.join(" ")} }`);
      expect(rules).toContain(`add element ip natfarm snat_vip { ${key} comment "${comment}" : ${VIP} }`);
    }
    expect(rules).not.toContain("-j MARK");
  });

  it("lists natfarm's nft table on Live tables: elements linked to their farm, the backends' counters rising with traffic", async () => {
    await page.goto(url("/tables"));
    await expectVisible(page.getByRole("heading", { level: 1, name: "Live tables" }));
    const dispatch = page.getByRole("table", { name: /^nftables ip natfarm map dispatch / });
    await expectVisible(dispatch.getByRole("row").filter({ hasText: `${VIP} . tcp . 80` }).getByRole("link", { name: FARM }));
    await expectVisible(page.getByRole("table", { name: new RegExp(`^nftables ip natfarm farm_${FARM}`) }));
    const backends = page.getByRole("table", { name: /^nftables ip natfarm set backends / });
    const counter = async (k: number) => {
      const row = backends.getByRole("row").filter({ hasText: `FARM_${FARM}_${k}_` });
      await expectCount(row, 1);
      const cell = row.getByRole("cell").first();
      return Number((await cell.getAttribute("title")) ?? (await cell.innerText()));
    };
    await expectVisible(backends.getByRole("row").filter({ hasText: `FARM_${FARM}_1_` }).getByRole("link", { name: `${FARM} #2` }));
    const before = [await counter(0), await counter(1)];
    await labEnsureVip({ name: c.lab.name, vip: VIP });
    const r = await labTraffic({ name: c.lab.name, vip: VIP, port: 80, connections: 100 });
    expect(r.failed).toBe(0);
    const got = [r.backends.b0?.count ?? 0, r.backends.b1?.count ?? 0];
    // The page refreshes every 2 s: each backend's counter rises by exactly the connections it answered.
    await expect.poll(async () => [await counter(0), await counter(1)], { timeout: 15_000, interval: 500 }).toEqual([before[0]! + got[0]!, before[1]! + got[1]!]);
  });

  it("the traffic sampler counts the backends set's counters: the farm's totals grow by the connections sent", async () => {
    const db = await openDatabase(c.dbUrl);
    try {
      let clock = Date.now() - 20_000;
      // The checker's kernel port defaults to NATFARM_ENGINE's engine (withEngine): the same here.
      const sampler = createTrafficSampler({ db, kernel: withEngine(directKernel, "nftables"), target: c.target, now: () => clock });
      const total = async () => (await db.trafficSample.findFirst({ where: { farm: FARM, step: 10 }, orderBy: { at: "desc" } }))?.connections ?? 0;
      await sampler.tick();
      const start = await total();
      expect(start).toBeGreaterThan(0);
      const r = await labTraffic({ name: c.lab.name, vip: VIP, port: 80, connections: 40 });
      expect(r.failed).toBe(0);
      clock += 10_000;
      await sampler.tick();
      expect(await total()).toBe(start + 40);
    } finally {
      await disconnectPrisma(c.dbUrl);
    }
  });
});
