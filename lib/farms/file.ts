import { readFile } from "node:fs/promises";
import { FarmValidationError } from "../applier/errors.ts";
import { formatIssues } from "./errors.ts";
import { FarmFileSchema, type Farm, type FarmFile } from "./schema.ts";
import { noteValidatedList } from "./validated.ts";

/**
 * The declarative file: `{"farms":[...]}` (README). `-` reads standard input.
 */
export async function readFarmFile(file: string): Promise<FarmFile> {
  let text: string;
  try {
    text = file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (e) {
    throw new FarmValidationError([`cannot read ${file}: ${(e as Error).message}`]);
  }
  return parseFarmFile(text, file);
}

export function parseFarmFile(text: string, name = "input"): FarmFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FarmValidationError([`${name} is not valid JSON: ${(e as Error).message}`]);
  }
  const parsed = FarmFileSchema.safeParse(json);
  if (!parsed.success) throw new FarmValidationError(formatIssues(parsed.error, json));
  noteValidatedList(parsed.data.farms);
  return parsed.data;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Farms as the file format writes them (the inverse of parsing, marks in hex). */
export function toFileFarm(f: Farm) {
  return {
    name: f.name,
    vip: f.vip,
    ports: f.ports,
    protocol: f.protocol,
    mode: f.mode,
    ...(f.status !== "up" ? { status: f.status } : {}),
    ...(f.scheduler !== "weight" ? { scheduler: f.scheduler } : {}),
    ...(f.persistence !== "none" ? { persistence: f.persistence, persistenceTtl: f.persistenceTtl } : {}),
    ...(f.healthcheck ? { healthcheck: f.healthcheck } : {}),
    backends: f.backends.map((b) => ({
      ip: b.ip,
      ...(b.port !== null ? { port: b.port } : {}),
      weight: b.weight,
      ...(b.mark !== undefined ? { mark: `0x${b.mark.toString(16)}` } : {}),
      ...(b.state !== "up" ? { state: b.state } : {}),
      ...(b.priority !== 1 ? { priority: b.priority } : {}),
    })),
  };
}
