import fs from "node:fs";
import type { Command } from "commander";
import { UsageError } from "./errors.ts";

/**
 * `natfarm cluster ...` (issue 12): the status of a cluster, the farm set
 * applied to all of its nodes, the configurations natfarm renders for
 * keepalived and conntrackd, and `notify`, which keepalived runs on every
 * VRRP transition. The lab's cluster is named by `--name` (its lab name).
 */
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
    .description("each node's role, VRRP state, floating addresses, links and conntrackd counters; split brain and other problems (exit 1 when critical)")
    .requiredOption("--name <name>", "the cluster lab's name")
    .option("--json", "print the status as JSON")
    .action(async (o) => {
      const { clusterLabStatus } = await lab();
      const { formatClusterStatus } = await import("../cluster/status.ts");
      const s = await clusterLabStatus({ name: o.name });
      out(o.json ? JSON.stringify(s) : formatClusterStatus(s));
      // After the status is printed: the CLI then exits 1 with this on stderr, for scripts and monitoring.
      if (s.severity === "critical") throw new Error(`cluster ${s.cluster} is critical: ${s.problems.filter((p) => p.severity === "critical").map((p) => p.message).join("; ")}`);
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
