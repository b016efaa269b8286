import fs from "node:fs";
import type { Command } from "commander";
import { UsageError } from "./errors.ts";

/**
 * `natfarm cluster ...` (issue 12): the status of a cluster, the farm set
 * applied to all of its nodes, the configurations natfarm renders for
 * keepalived and conntrackd, and `notify`, which keepalived runs on every
 * VRRP transition. The lab's cluster is named by `--name` (its lab name).
 */
/**
 * The desired farm set to compare each node's kernel with and the nodes'
 * own records (ClusterNode: what each applied, when, its last error, its
 * heartbeat), both from the database when one is configured
 * (NATFARM_DATABASE_URL); without one the versions are shown and not
 * compared, and no record is read — a status command must not create a
 * database as a side effect.
 */
function fromDatabase() {
  if (!process.env.NATFARM_DATABASE_URL?.trim()) return null;
  let read: Promise<{ desired: import("../farms/schema.ts").ResolvedFarm[]; records: Awaited<ReturnType<typeof import("../cluster/node-sync.ts").loadClusterNodes>> }> | null = null;
  const load = () =>
    (read ??= (async () => {
      const [{ openDatabase, disconnectPrisma }, { loadFarms }, { rowToResolved }, { loadClusterNodes }] = await Promise.all([
        import("../db/client.ts"),
        import("../service/store.ts"),
        import("../service/farm-rows.ts"),
        import("../cluster/node-sync.ts"),
      ]);
      try {
        const db = await openDatabase();
        const [farms, records] = await Promise.all([loadFarms(db), loadClusterNodes(db)]);
        return { desired: farms.map(rowToResolved), records };
      } finally {
        await disconnectPrisma();
      }
    })());
  return { desired: async () => (await load()).desired, records: async () => (await load()).records };
}

export function registerClusterCommands(program: Command, out: (s: string) => void): void {
  const cluster = program.command("cluster").description("balancer clusters: VRRP failover (keepalived) and connection sync (conntrackd)");
  const lab = () => import("../lab/cluster.ts");
  const int = (v: string) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`"${v}" is not a whole number`);
    return Number(v);
  };
  const readJson = (file: string) => {
    try {
      return JSON.parse(fs.readFileSync(file === "-" ? 0 : file, "utf8")) as unknown;
    } catch (e) {
      throw new UsageError(`${file}: ${(e as Error).message}`);
    }
  };

  cluster
    .command("status")
    .description(
      "each node's role, VRRP state, floating addresses, links, conntrackd counters, maintenance, the farm set its kernel holds and its own record (what it applied, when, its last error; stale when it stopped reporting); split brain and other problems (exit 1 when critical)",
    )
    .option("--name <name>", "a cluster lab's name (default: the configured cluster, NATFARM_CLUSTER=lab:<name>)")
    .option("--json", "print the status as JSON")
    .action(async (o) => {
      const [{ clusterOverview, clusterSetting, formatClusterView, ClusterSettingError }, { kernel }] = await Promise.all([import("../service/cluster.ts"), import("../kernel/index.ts")]);
      let setting;
      try {
        setting = o.name !== undefined ? clusterSetting({ NATFARM_CLUSTER: `lab:${o.name}` }) : clusterSetting();
      } catch (e) {
        if (e instanceof ClusterSettingError) throw new UsageError(o.name !== undefined ? `--name: "${o.name}" is not a lab name (1-12 characters [a-z0-9])` : e.message);
        throw e;
      }
      const db = fromDatabase();
      const v = await clusterOverview({ setting, kernel: kernel(), desired: db?.desired ?? (async () => null), ...(db ? { records: db.records } : {}) });
      out(o.json ? JSON.stringify(v) : formatClusterView(v));
      // After the status is printed: the CLI then exits 1 with this on stderr, for scripts and monitoring.
      if (v.configured && v.severity === "critical") throw new Error(`cluster ${v.cluster} is critical: ${v.problems.filter((p) => p.severity === "critical").map((p) => p.message).join("; ")}`);
    });

  cluster
    .command("maintenance")
    .description("put a node in maintenance (it hands the floating addresses over to a ready backup, established connections kept) or back in service")
    .requiredOption("--node <id>", "node id")
    .option("--name <name>", "a cluster lab's name (default: the configured cluster, NATFARM_CLUSTER=lab:<name>)")
    .option("--json", "print the result as JSON")
    .argument("<mode>", "on or off")
    .action(async (mode: string, o) => {
      const [{ clusterSetting, setNodeMaintenance, MaintenanceInput }, { kernel }] = await Promise.all([import("../service/cluster.ts"), import("../kernel/index.ts")]);
      const req = MaintenanceInput.safeParse({ node: o.node, mode });
      if (!req.success) throw new UsageError(req.error.issues.map((i) => i.message).join("; "));
      let setting;
      try {
        setting = o.name !== undefined ? clusterSetting({ NATFARM_CLUSTER: `lab:${o.name}` }) : clusterSetting();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (setting.kind === "none") throw new UsageError("no cluster is configured: name a cluster lab with --name, or set NATFARM_CLUSTER=lab:<name>");
      const r = await setNodeMaintenance({ setting, kernel: kernel() }, req.data);
      if (o.json) return out(JSON.stringify(r));
      out(`${r.node}: ${r.changed ? (r.on ? "in maintenance" : "back in service") : r.on ? "already in maintenance" : "already in service"}; master ${r.master ?? "none"} (${r.ms} ms)`);
    });

  cluster
    .command("apply")
    .description("apply a farm file to every node's kernel (the same marks everywhere) and float its VIPs with keepalived")
    .requiredOption("--name <name>", "the cluster lab's name")
    .requiredOption("-f, --file <file>", "farm file (JSON), - for stdin")
    .option("--json", "print the result as JSON")
    .action(async (o) => {
      const { readFarmFile } = await import("../farms/file.ts");
      const { clusterLabApply } = await lab();
      const file = await readFarmFile(o.file);
      const r = await clusterLabApply({ name: o.name, farms: file.farms });
      if (o.json) return out(JSON.stringify(r));
      for (const n of r.nodes) out(`${n.name}: ${n.changed ? `${n.rulesAdded} rule(s) added, ${n.rulesDeleted} removed` : "unchanged"} (${n.durationMs} ms)`);
      out(r.reloaded.length ? `keepalived reloaded on ${r.reloaded.join(", ")}` : "keepalived unchanged");
    });

  cluster
    .command("render")
    .description("print the keepalived.conf (or conntrackd.conf) natfarm writes for one node of a cluster")
    .requiredOption("--config <file>", "cluster settings (JSON)")
    .requiredOption("--node <id>", "node id", int)
    .option("-f, --file <file>", "farm file whose VIPs float (JSON)")
    .option("--conntrackd", "conntrackd.conf instead of keepalived.conf")
    .option("--run-dir <dir>", "the node's runtime directory", "/run/natfarm/cluster")
    .action(async (o) => {
      const { ClusterConfigSchema } = await import("../cluster/config.ts");
      const parsed = ClusterConfigSchema.safeParse(readJson(o.config));
      if (!parsed.success) throw new UsageError(`${o.config}: ${parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ")}`);
      const config = parsed.data;
      if (o.conntrackd) {
        const { renderConntrackd } = await import("../cluster/conntrackd.ts");
        return out(renderConntrackd(config, o.node, { runDir: o.runDir }));
      }
      const { renderKeepalived } = await import("../cluster/keepalived.ts");
      const farms = o.file ? (await (await import("../farms/file.ts")).readFarmFile(o.file)).farms : [];
      try {
        out(renderKeepalived(config, o.node, farms, { notify: [process.execPath, process.argv[1] ?? "natfarm", "cluster", "notify", "--run-dir", o.runDir] }));
      } catch (e) {
        // Settings that do not fit the farms (a DNAT farm without a backend gateway, a VIP that is a node's address): bad input.
        if ((e as Error).name === "ClusterConfigError") throw new UsageError((e as Error).message);
        throw e;
      }
    });

  cluster
    .command("notify")
    .description("run by keepalived on a VRRP transition: record the state, run conntrackd's steps (commit on master, resync on backup)")
    .requiredOption("--run-dir <dir>", "the node's runtime directory")
    .argument("<state>", "master, backup, fault or stop")
    .action(async (state: string, o) => {
      const { VrrpStateSchema } = await import("../cluster/transitions.ts");
      const parsed = VrrpStateSchema.safeParse(state);
      if (!parsed.success) throw new UsageError(parsed.error.issues[0]!.message);
      const { clusterNotify } = await import("../cluster/notify.ts");
      const r = await clusterNotify(o.runDir, parsed.data);
      const failed = r.steps.filter((s) => s.exitCode !== 0);
      out(`${parsed.data}: ${r.steps.length} conntrackd step(s)${failed.length ? `, ${failed.length} failed (${failed.map((s) => s.args.join(" ")).join(", ")})` : ""}`);
      if (failed.length) throw new Error(`${parsed.data}: conntrackd ${failed.map((s) => `${s.args.join(" ")} exited ${s.exitCode}: ${s.output}`).join("; ")}`);
    });
}
