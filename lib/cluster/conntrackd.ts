import { clusterNode, type ClusterConfig } from "./config.ts";

/**
 * conntrackd.conf for one node (pure): FTFW (reliable: sequence numbers,
 * acknowledgements, resends) over the dedicated sync link, unicast UDP to the
 * one peer of a two-node cluster or a multicast group for more. conntrackd
 * sends each entry's NAT translation and its connection mark, so the node
 * that takes over restores natfarm's backend marks exactly as the master set
 * them.
 *
 * The external cache stays on (the default): a backup keeps the master's
 * entries in conntrackd, not in its kernel, and commits them when it becomes
 * master (`conntrackd -c`, see transitions.ts) — the kernel of a backup holds
 * no stale translations that would catch a new connection's packets.
 *
 * Connections from or to the node's own addresses (health checks, VRRP, the
 * sync itself, SSH) are the node's own business and are not synced.
 */

export interface ConntrackdPaths {
  /** Per-node runtime directory: lock file, control socket and log live here, so two daemons on one machine never share them. */
  runDir: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

export function conntrackdFiles(runDir: string) {
  if (!SAFE_PATH.test(runDir) || runDir.split("/").includes("..")) throw new Error(`conntrackd run directory must be an absolute path of [A-Za-z0-9_./-], got ${JSON.stringify(runDir)}`);
  return {
    config: `${runDir}/conntrackd.conf`,
    lock: `${runDir}/conntrackd.lock`,
    socket: `${runDir}/conntrackd.ctl`,
    log: `${runDir}/conntrackd.log`,
  };
}

export function renderConntrackd(config: ClusterConfig, nodeId: number, paths: ConntrackdPaths): string {
  const node = clusterNode(config, nodeId);
  const files = conntrackdFiles(paths.runDir);
  const peers = config.nodes.filter((n) => n.id !== node.id);
  const { port, multicastGroup } = config.conntrackd;
  const channel = multicastGroup
    ? [
        "    Multicast {",
        `        IPv4_address ${multicastGroup}`,
        `        Group ${port}`,
        `        IPv4_interface ${node.syncAddress}`,
        `        Interface ${config.interfaces.sync}`,
        "        SndSocketBuffer 1249280",
        "        RcvSocketBuffer 1249280",
        "        Checksum on",
        "    }",
      ]
    : [
        "    UDP {",
        `        IPv4_address ${node.syncAddress}`,
        `        IPv4_Destination_Address ${peers[0]!.syncAddress}    # node ${peers[0]!.name}`,
        `        Port ${port}`,
        `        Interface ${config.interfaces.sync}`,
        "        SndSocketBuffer 1249280",
        "        RcvSocketBuffer 1249280",
        "        Checksum on",
        "    }",
      ];
  const ignored = [
    ["127.0.0.1", "loopback"],
    ...config.nodes.flatMap((n) =>
      [
        [n.syncAddress, `node ${n.name}, sync link`],
        n.clientAddress ? [n.clientAddress, `node ${n.name}, client side`] : null,
        n.backendAddress ? [n.backendAddress, `node ${n.name}, backend side`] : null,
      ].filter((x): x is string[] => x !== null),
    ),
  ];
  return [
    `# natfarm: conntrackd for node ${node.name} (id ${node.id}) of cluster ${config.name}. Generated: edit the cluster settings, not this file.`,
    "Sync {",
    "    Mode FTFW {",
    // A node leaving the master role shortens its kernel entries to this (conntrackd -t): they are the new master's now.
    "        PurgeTimeout 15",
    "        DisableExternalCache Off",
    "    }",
    ...channel,
    "}",
    "",
    "General {",
    "    Systemd off",
    "    HashSize 32768",
    "    HashLimit 131072",
    `    LogFile ${files.log}`,
    "    Syslog off",
    `    LockFile ${files.lock}`,
    "    UNIX {",
    `        Path ${files.socket}`,
    "    }",
    "    NetlinkBufferSize 2097152",
    "    NetlinkBufferSizeMaxGrowth 8388608",
    "    NetlinkEventsReliable On",
    "    Filter From Userspace {",
    "        Protocol Accept {",
    "            TCP",
    "            UDP",
    "            SCTP",
    "        }",
    "        Address Ignore {",
    ...ignored.map(([a, why]) => `            IPv4_address ${a}    # ${why}`),
    "        }",
    "    }",
    "}",
    "",
  ].join("\n");
}
