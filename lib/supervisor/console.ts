import path from "node:path";
import type { ConsoleEnv } from "../console/env.ts";
import { formatTarget } from "../privileged/target.ts";
import { PARENT_GUARD, type ChildSpec } from "./children.ts";
import type { ConsoleUser } from "./console-user.ts";

/**
 * The children `npm start` supervises. Adding one (the root agent of the next
 * step) is one more entry; running the web server and the checker as the
 * unprivileged natfarm user is a `user` on theirs.
 */
const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

export function consoleChildren(o: {
  root: string;
  env: ConsoleEnv;
  dev: boolean;
  node?: string;
  isRoot?: boolean;
  /** Root only: the web server and the checker run as this user, the agent as root on `agentSocket`. */
  user?: ConsoleUser;
  agentSocket?: string;
  /** The agent accepts the tests' fault injection. */
  testHooks?: boolean;
}): ChildSpec[] {
  const node = o.node ?? process.execPath;
  const asUser = o.user ? { user: { name: o.user.name, group: o.user.name } } : {};
  const t = o.env.target;
  // The children are told the target the supervisor resolved (their own default, without root, would be none).
  const viaAgent: Record<string, string> =
    o.user && o.agentSocket ? { NATFARM_AGENT_SOCKET: o.agentSocket, NATFARM_TARGET: t.kind === "lab" ? "lab" : t.canApply ? formatTarget(t.target) : "none" } : {};
  const children: ChildSpec[] = [
    {
      name: "web",
      // natfarm's HTTPS server around Next.js (scripts/web-server.ts: TLS, Host and Origin checks, security
      // headers); it reads NATFARM_HOST, NATFARM_TLS* and NATFARM_ALLOWED_HOSTS from the inherited environment.
      argv: [node, "--import", "tsx", "--import", PARENT_GUARD, path.join(o.root, "scripts", "web-server.ts"), ...(o.dev ? ["--dev"] : [])],
      cwd: o.root,
      env: { PORT: String(o.env.port), NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: o.dev ? "development" : "production", ...viaAgent },
      ...asUser,
    },
  ];
  if (t.canApply && o.user && o.agentSocket) {
    // The one privileged process: it serves exactly the console's target and lab, to the console's group.
    const serves = t.kind === "lab" ? ["--target", formatTarget(t.target), "--lab", t.labName] : ["--target", formatTarget(t.target)];
    children.unshift({
      name: "agent",
      argv: [node, "--import", PARENT_GUARD, path.join(o.root, "bin", "natfarm.mjs"), "agent", "--socket", o.agentSocket, ...serves, "--group", o.user.name, ...(o.testHooks ? ["--test-hooks"] : [])],
      cwd: o.root,
    });
  }
  if (t.canApply) {
    children.push({
      name: "checker",
      // Started inside the balancer's namespace directly (then without root when a user is given):
      // no Node wrapper that could die and leave it behind.
      argv: [node, "--import", "tsx", "--import", PARENT_GUARD, path.join(o.root, "scripts", "health-checker.ts")],
      cwd: o.root,
      env: { ...viaAgent },
      ...(t.target.kind === "netns" && (o.isRoot ?? isRoot()) ? { netns: t.target.name } : {}),
      ...asUser,
    });
  }
  return children;
}
