import path from "node:path";
import { databaseEnv } from "../db/env.ts";
import { certificateNames, consoleUrl, parseWebConfig, systemNames, type SystemNames, type WebConfig } from "./config.ts";
import { formatHost, isIPv6, isLoopback, isWildcard } from "./hosts.ts";
import { describeCertificate, loadCertificate, type LoadedCertificate, type Owner } from "./tls.ts";

/**
 * What the supervisor and the web server share: the web configuration from
 * the environment (the TLS directory defaults to tls/ beside the database),
 * and the certificate made or checked before the server starts. The
 * supervisor calls both as root before it starts its "web" child, handing
 * the files to the user that child runs as, so it can print the URL with
 * the fingerprint; the web server calls them again and finds the same
 * certificate.
 */
export function webConfigFromEnv(env: Record<string, string | undefined>, o: { root: string; dev?: boolean }): WebConfig {
  return parseWebConfig(env, { root: o.root, dev: o.dev, defaultTlsDir: () => path.join(databaseEnv().dataDir, "tls") });
}

export interface PreparedWeb {
  config: WebConfig;
  cert: LoadedCertificate | null;
  /** Where to point a browser, e.g. https://localhost:3000. */
  url: string;
  /** `serving <url> (listening on <addr>); <certificate and its fingerprint>` */
  summary: string;
}

export async function prepareWeb(config: WebConfig, o: { owner?: Owner } = {}): Promise<PreparedWeb> {
  const sys = systemNames();
  const cert = await loadCertificate(config, certificateNames(config, sys), { hostname: sys.hostname, owner: o.owner });
  const url = consoleUrl(config, sys);
  return { config, cert, url, summary: `serving ${url} (listening on ${formatHost(config.host, config.port)}${alsoAt(config, sys)}); ${describeCertificate(cert)}` };
}

/** On every interface, the addresses it answers on too: a desk whose DNS does not know this machine's name uses one of them. */
function alsoAt(config: WebConfig, sys: SystemNames): string {
  if (!isWildcard(config.host)) return "";
  const v6 = config.host === "::";
  const urls = sys.interfaceAddresses.filter((a) => !isLoopback(a) && (v6 || !isIPv6(a))).map((a) => `${config.scheme}://${formatHost(a, config.port)}`);
  return urls.length ? `; also ${urls.join(", ")}` : "";
}
