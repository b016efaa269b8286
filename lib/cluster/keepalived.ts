import { addressOf, clusterNode, ClusterConfigError, type ClusterConfig } from "./config.ts";

/**
 * keepalived.conf for one node (pure). One VRRPv3 instance carries every
 * floating address of the cluster, so they all move together:
 *
 * - the gateways (client side, backend side) in `virtual_ipaddress`: they are
 *   fixed by the cluster's settings, so the adverts, which list these, are the
 *   same on every node even while a farm change is being rolled out;
 * - every farm's VIP in `virtual_ipaddress_excluded`: not in the adverts (a
 *   node that reloaded a new farm before its peer would otherwise see
 *   adverts that disagree with its own list), but added, removed and
 *   announced by gratuitous ARP exactly like the others. Each carries the
 *   label `<iface>:vip`, which tells natfarm's applier it is a VIP the node
 *   answers for, not one of its own addresses.
 *
 * Every node starts as BACKUP with `nopreempt`: a node that comes back (a
 * reboot, healed links) never takes the master role from a running master,
 * so it cannot take over before its conntrackd has pulled the connection
 * table (`conntrackd -n` in its backup transition); it becomes master only
 * when the master fails. The nodes' different priorities decide the first
 * election only.
 *
 * Adverts are unicast over the sync link, and the client and backend
 * interfaces are tracked: a node that loses either goes to FAULT and drops
 * the addresses, while a cut sync link alone leaves both nodes healthy and
 * both master — the split brain `natfarm cluster status` reports.
 */

export interface FloatingAddress {
  address: string;
  prefix: number;
  dev: string;
  label?: string;
  /** Why it floats: "client gateway", "backend gateway", or the farms using it as VIP. */
  why: string;
}

export interface KeepalivedOptions {
  /**
   * The notify command: keepalived runs it with "master", "backup", "fault"
   * or "stop" appended (`natfarm cluster notify --run-dir DIR`). keepalived
   * splits the line at spaces, so no word may hold a space or a quote.
   */
  notify: readonly string[];
  /**
   * A file keepalived tracks (weight 0): a non-zero number in it puts the
   * node in FAULT — the operator's maintenance switch (lib/cluster/maintenance.ts).
   * FAULT, not a lower priority: with nopreempt a backup never takes over
   * from a master whose priority merely dropped, but a master entering FAULT
   * sends a priority-0 advert and the backup takes over at once.
   */
  maintenanceFile?: string;
}

type FarmVip = { name: string; vip: string; mode: "nat" | "dnat"; status?: "up" | "stopped" };

const SAFE_WORD = /^[A-Za-z0-9_./:=@+,-]+$/;

const seconds = (ms: number) => String(ms / 1000);

/** The floating addresses, gateways first, then each VIP once with the farms that use it. */
export function floatingAddresses(config: ClusterConfig, farms: readonly FarmVip[]): { gateways: FloatingAddress[]; vips: FloatingAddress[] } {
  const issues: { path: string; message: string }[] = [];
  const gateways: FloatingAddress[] = [];
  const gw = (text: string | undefined, dev: string, why: string) => {
    if (!text) return;
    const [address, prefix] = text.split("/");
    gateways.push({ address: address!, prefix: Number(prefix), dev, why });
  };
  gw(config.clientGateway, config.interfaces.client, "client gateway");
  gw(config.backendGateway, config.interfaces.backend, "backend gateway");

  const own = new Map<string, string>();
  for (const n of config.nodes) {
    own.set(n.syncAddress, `node ${n.name}'s sync address`);
    if (n.clientAddress) own.set(n.clientAddress, `node ${n.name}'s client-side address`);
    if (n.backendAddress) own.set(n.backendAddress, `node ${n.name}'s backend-side address`);
  }
  for (const g of gateways) {
    const clash = own.get(g.address);
    if (clash) issues.push({ path: g.why === "client gateway" ? "clientGateway" : "backendGateway", message: `${g.address} is ${clash}` });
  }
  if (config.clientGateway && config.backendGateway && addressOf(config.clientGateway) === addressOf(config.backendGateway)) {
    issues.push({ path: "backendGateway", message: "the client and backend gateways must be different addresses" });
  }

  const byVip = new Map<string, string[]>();
  for (const f of farms) byVip.set(f.vip, [...(byVip.get(f.vip) ?? []), f.name]);
  const vips: FloatingAddress[] = [];
  for (const [vip, names] of [...byVip].sort(([a], [b]) => compareIp(a, b))) {
    const clash = own.get(vip) ?? gateways.find((g) => g.address === vip)?.why;
    if (clash) issues.push({ path: "farms", message: `farm ${names.join(", ")}: VIP ${vip} is ${clash}` });
    vips.push({ address: vip, prefix: 32, dev: config.interfaces.client, label: `${config.interfaces.client}:vip`, why: `farm ${names.join(", ")}` });
  }
  const dnat = farms.filter((f) => f.mode === "dnat").map((f) => f.name);
  if (dnat.length && !config.backendGateway) {
    issues.push({
      path: "backendGateway",
      message: `DNAT farm ${dnat.join(", ")} needs a floating backend gateway (backendGateway): its backends must route replies through whichever node is master`,
    });
  }
  if (issues.length) throw new ClusterConfigError(issues);
  return { gateways, vips };
}

function compareIp(a: string, b: string): number {
  const n = (ip: string) => ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

function addressLine(a: FloatingAddress): string {
  return `        ${a.address}/${a.prefix} dev ${a.dev}${a.label ? ` label ${a.label}` : ""}    # ${a.why}`;
}

export function renderKeepalived(config: ClusterConfig, nodeId: number, farms: readonly FarmVip[], opts: KeepalivedOptions): string {
  const node = clusterNode(config, nodeId);
  const bad = opts.notify.filter((w) => !SAFE_WORD.test(w));
  if (opts.notify.length === 0 || bad.length) {
    throw new ClusterConfigError([{ path: "notify", message: `the notify command must be words without spaces or quotes, got ${JSON.stringify(bad.length ? bad : opts.notify)}` }]);
  }
  const { gateways, vips } = floatingAddresses(config, farms);
  const peers = config.nodes.filter((n) => n.id !== node.id);
  const notify = (state: string) => `"${[...opts.notify, state].join(" ")}"`;
  const { client, backend, sync } = config.interfaces;
  const maintenance = opts.maintenanceFile;
  if (maintenance !== undefined && !SAFE_WORD.test(maintenance)) {
    throw new ClusterConfigError([{ path: "maintenanceFile", message: `the maintenance file must be a path without spaces or quotes, got ${JSON.stringify(maintenance)}` }]);
  }
  const lines = [
    `# natfarm: keepalived for node ${node.name} (id ${node.id}) of cluster ${config.name}. Generated: edit the cluster settings, not this file.`,
    "global_defs {",
    `    router_id natfarm-${config.name}-${node.name}`,
    "    script_user root",
    "    enable_script_security",
    "    vrrp_version 3",
    // Adverts every 100 ms must not wait behind a busy CPU: keepalived raises
    // itself to real-time scheduling when it sees its timers run late.
    "    max_auto_priority",
    "    vrrp_garp_interval 0.001",
    "}",
    "",
    // init_file without overwrite: a node in maintenance stays in it across a reload or restart.
    ...(maintenance ? ["track_file natfarm_maintenance {", `    file "${maintenance}"`, "    weight 0", "    init_file 0", "}", ""] : []),
    "vrrp_instance natfarm {",
    "    state BACKUP",
    "    nopreempt",
    `    interface ${sync}`,
    `    virtual_router_id ${config.virtualRouterId}`,
    `    priority ${node.priority}`,
    `    advert_int ${seconds(config.advertIntervalMs)}`,
    `    unicast_src_ip ${node.syncAddress}`,
    "    unicast_peer {",
    ...peers.map((p) => `        ${p.syncAddress}    # node ${p.name}`),
    "    }",
    "    track_interface {",
    `        ${client}`,
    `        ${backend}`,
    "    }",
    ...(maintenance ? ["    track_file {", "        natfarm_maintenance", "    }"] : []),
    `    garp_master_delay ${config.garp.masterDelayS}`,
    `    garp_master_repeat ${config.garp.masterRepeat}`,
    `    garp_master_refresh ${config.garp.refreshS}`,
    "    virtual_ipaddress {",
    ...gateways.map(addressLine),
    "    }",
    "    virtual_ipaddress_excluded {",
    ...vips.map(addressLine),
    "    }",
    `    notify_master ${notify("master")}`,
    `    notify_backup ${notify("backup")}`,
    `    notify_fault ${notify("fault")}`,
    `    notify_stop ${notify("stop")}`,
    "}",
    "",
  ];
  return lines.join("\n");
}
