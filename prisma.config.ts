import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "prisma/config";

const root = path.dirname(fileURLToPath(import.meta.url));

// The CLI resolves this variable after loading the config, so setting it here
// spares everyone (npm ci's postinstall included) from exporting it. Someone
// with a real engine binary can still override it from the environment.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(root, "prisma", "schema-engine-stub.mjs");

function databaseUrl(): string {
  const raw = process.env.NATFARM_DATABASE_URL?.trim();
  if (!raw) return `file:${path.join(root, "data", "natfarm.db")}`;
  const file = raw.startsWith("file:") ? raw.slice(5) : raw;
  return `file:${path.isAbsolute(file) ? file : path.resolve(root, file)}`;
}

export default defineConfig({
  schema: path.join(root, "prisma", "schema.prisma"),
  migrations: { path: path.join(root, "prisma", "migrations") },
  datasource: { url: databaseUrl() },
});
