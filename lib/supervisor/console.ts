import path from "node:path";
import type { ConsoleEnv } from "../console/env.ts";
import { PARENT_GUARD, type ChildSpec } from "./children.ts";

/**
 * The children `npm start` supervises. Adding one (the root agent of the next
 * step) is one more entry; running the web server and the checker as the
 * unprivileged natfarm user is a `user` on theirs.
 */
const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

export function consoleChildren(o: { root: string; env: ConsoleEnv; dev: boolean; node?: string; isRoot?: boolean }): ChildSpec[] {
  const node = o.node ?? process.execPath;
  const nextBin = path.join(o.root, "node_modules", "next", "dist", "bin", "next");
  const t = o.env.target;
  const children: ChildSpec[] = [
    {
      name: "web",
      argv: [node, "--import", PARENT_GUARD, nextBin, o.dev ? "dev" : "start", "-H", o.env.host, "-p", String(o.env.port)],
      cwd: o.root,
      env: { HOSTNAME: o.env.host, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: o.dev ? "development" : "production" },
    },
  ];
  if (t.canApply) {
    children.push({
      name: "checker",
      // Started inside the balancer's namespace directly: no Node wrapper that could die and leave it behind.
      // (Not root: `ip netns exec` is refused, the checker enters the namespace itself through sudo.)
      argv: [node, "--import", "tsx", "--import", PARENT_GUARD, path.join(o.root, "scripts", "health-checker.ts")],
      cwd: o.root,
      ...(t.target.kind === "netns" && (o.isRoot ?? isRoot()) ? { netns: t.target.name } : {}),
    });
  }
  return children;
}
