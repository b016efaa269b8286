import type { KernelPort } from "../kernel/index.ts";
import type { Target } from "../privileged/target.ts";
import { isAgentDown } from "./errors.ts";

/**
 * Whether this process can reach the kernel now: what the console's banner
 * shows. "direct": this process is the kernel's own client (root without an
 * agent), nothing to be down; "unused": no target, nothing is applied.
 */
export type KernelReach = { state: "direct" | "unused" | "up" } | { state: "down"; message: string };

/** Short: a page waits for this. An agent that does not answer in time is as good as down for the operator. */
const REACH_TIMEOUT_MS = 1_500;

/**
 * The cheapest round trip the port has: a ping, which the agent answers
 * without running any program.
 */
export async function kernelReach(k: KernelPort, target: Target | null, timeoutMs = REACH_TIMEOUT_MS): Promise<KernelReach> {
  if (!target) return { state: "unused" };
  if (k.via === "direct") return { state: "direct" };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<KernelReach>((resolve) => {
    timer = setTimeout(() => resolve({ state: "down", message: `the natfarm agent did not answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const asked = k.ping(timeoutMs).then(
    (): KernelReach => ({ state: "up" }),
    // Any answer, even a refusal, means an agent is there.
    (e): KernelReach => (isAgentDown(e) ? { state: "down", message: (e as Error).message } : { state: "up" }),
  );
  try {
    return await Promise.race([asked, late]);
  } finally {
    clearTimeout(timer);
  }
}
