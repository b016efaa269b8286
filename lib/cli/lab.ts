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

  lab
    .command("up")
    .requiredOption("--name <name>", "lab name (prefix of its namespaces)")
    .option("--backends <k>", "number of backends", int, 2)
    .option("--json", "print the lab as JSON")
    .action(async (o) => {
      const info = await (await load()).up({ name: o.name, backends: o.backends });
      out(o.json ? JSON.stringify(info) : `lab ${info.name} up: target ${info.target}, backends ${info.backends.map((b) => `${b.name}=${b.ip}`).join(" ")}`);
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
      const info = await (await load()).status({ name: o.name });
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
      await m.ensureVip({ name: o.name, vip: o.vip });
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
