import type { Command } from "commander";
import { engineFromEnv, engineMessage, isEngine, type Engine } from "../kernel/engine.ts";
import { UsageError } from "./errors.ts";

export function parseEngineOption(value: string): Engine {
  if (!isEngine(value)) throw new UsageError(engineMessage("--engine", value));
  return value;
}

/** `--engine` for a command that reads or writes rules; left out, NATFARM_ENGINE decides (iptables when unset). */
export function engineOption<C extends Command>(cmd: C): C {
  return cmd.option("--engine <engine>", "iptables or nftables (default: NATFARM_ENGINE, else iptables)", parseEngineOption) as C;
}

/** The engine a command uses: its --engine, else NATFARM_ENGINE (a bad value is bad input, exit 2). */
export function engineOf(o: { engine?: Engine }): Engine {
  if (o.engine) return o.engine;
  try {
    return engineFromEnv();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
