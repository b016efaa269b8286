import type { Command } from "commander";

/** `natfarm lab up|down|status|traffic`: the namespace test bed (DESIGN.md, "The lab"). */
export function registerLabCommands(program: Command, out: (s: string) => void): void {
  const lab = program.command("lab").description("network-namespace lab: a client, a load balancer and backends");
  // Through the kernel port: the agent's lab when one runs, the lab itself as root without one.
  const load = async () => (await import("../kernel/index.ts")).kernel().lab;
  const int = (v: string) => {
    if (!/^\d+$/.test(v)) throw new Error(`"${v}" is not a whole number`);
    return Number(v);
  };

  // The cluster lab runs keepalived and conntrackd in its node namespaces: root's CLI only, never through the agent.
  const cluster = () => import("../lab/cluster.ts");

  lab
    .command("up")
    .requiredOption("--name <name>", "lab name (prefix of its namespaces)")
    .option("--backends <k>", "number of backends", int, 2)
    .option("--cluster <n>", "a cluster of n balancer nodes (keepalived + conntrackd) instead of one balancer", int)
    .option("--no-conntrackd", "cluster lab: no connection sync (established connections are lost on failover)")
    .option("--json", "print the lab as JSON")
    .action(async (o) => {
      if (o.cluster !== undefined) {
        const info = await (await cluster()).clusterLabUp({ name: o.name, nodes: o.cluster, backends: o.backends, conntrackd: o.conntrackd });
        out(
          o.json
            ? JSON.stringify(info)
            : `lab ${info.name} up: cluster of ${info.nodes.length} nodes (${info.nodes.map((n) => `${n.name} target ${n.target}`).join(", ")}), master n1; backends ${info.backends.map((b) => `${b.name}=${b.ip}`).join(" ")}`,
        );
        return;
      }
      const info = await (await load()).up({ name: o.name, backends: o.backends });
      out(o.json ? JSON.stringify(info) : `lab ${info.name} up: target ${info.target}, backends ${info.backends.map((b) => `${b.name}=${b.ip}`).join(" ")}`);
    });

  lab
    .command("fail")
    .description("cluster lab: pull a node's links (--links all), or cut only its sync link (--links sync: the nodes stay healthy but cannot hear each other)")
    .requiredOption("--name <name>", "lab name")
    .requiredOption("--node <k>", "node number (1, 2)", int)
    .option("--links <which>", "all or sync", "all")
    .action(async (o) => {
      await (await cluster()).clusterLabFail({ name: o.name, node: o.node, links: o.links });
      out(o.links === "sync" ? `lab ${o.name}: node ${o.node}'s sync link cut` : `lab ${o.name}: node ${o.node}'s links pulled`);
    });

  lab
    .command("heal")
    .description("cluster lab: restore every link of a node")
    .requiredOption("--name <name>", "lab name")
    .requiredOption("--node <k>", "node number (1, 2)", int)
    .action(async (o) => {
      await (await cluster()).clusterLabHeal({ name: o.name, node: o.node });
      out(`lab ${o.name}: node ${o.node}'s links restored`);
    });

  lab
    .command("down")
    .requiredOption("--name <name>", "lab name")
    .action(async (o) => {
      await (await load()).down({ name: o.name });
      out(`lab ${o.name} down`);
    });

  lab
    .command("status")
    .requiredOption("--name <name>", "lab name")
    .action(async (o) => {
      const info = (await (await load()).status({ name: o.name })) ?? (await (await cluster()).clusterLabInfo(o.name));
      out(info ? JSON.stringify(info) : `no lab named ${o.name}`);
    });

  lab
    .command("traffic")
    .description("open new connections from the client to a VIP and count what each backend got")
    .requiredOption("--name <name>", "lab name")
    .requiredOption("--vip <vip>", "virtual IP (in 198.51.100.0/24)")
    .requiredOption("--port <port>", "virtual port", int)
    .option("--connections <c>", "number of new connections", int, 100)
    .option("--protocol <p>", "tcp or udp", "tcp")
    .option("--json", "print the result as JSON")
    .action(async (o) => {
      const m = await load();
      // A cluster lab's VIPs are keepalived's to place (on the master), not the lab's.
      if (!(await (await cluster()).clusterLabInfo(o.name))) await m.ensureVip({ name: o.name, vip: o.vip });
      const r = await m.traffic({ name: o.name, vip: o.vip, port: o.port, connections: o.connections, protocol: o.protocol });
      if (o.json) {
        out(JSON.stringify(r));
        return;
      }
      out(`${r.ok}/${r.connections} ${r.protocol} connections to ${r.vip}:${r.port} answered${r.failed ? `, ${r.failed} failed` : ""}`);
      for (const [name, b] of Object.entries(r.backends)) {
        const share = r.ok ? ((100 * b.count) / r.ok).toFixed(1) : "0.0";
        out(`  ${name.padEnd(4)} ${String(b.count).padStart(7)}  ${share.padStart(5)}%  saw source ${Object.keys(b.peers).join(", ")}`);
      }
      for (const [msg, n] of Object.entries(r.errors ?? {})) out(`  error x${n}: ${msg}`);
    });
}
