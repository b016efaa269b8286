import { defineConfig } from "vitest/config";
import path from "node:path";

// The database matrix: every file that goes through the database runs a second time on
// PostgreSQL (tests/helpers/db.ts gives each a fresh database; processes inside a lab's
// namespaces reach it through its Unix socket). The files that never open a database
// (the kernel, the CLI's file-only commands, the agent, the lab) run once: the README's
// "Tests" lists which and why.
const POSTGRES_FILES = [
  "tests/integration/db-postgres.test.ts",
  "tests/integration/console-service.test.ts",
  "tests/integration/auth.test.ts",
  "tests/integration/auth-account.test.ts",
  "tests/integration/user-cli.test.ts",
  "tests/integration/rest-api.test.ts",
  "tests/integration/rest-api-contract.test.ts",
  "tests/integration/farm-bulk.test.ts",
  "tests/integration/defects.test.ts",
  "tests/integration/restore.test.ts",
  "tests/integration/service-kernel-port.test.ts",
  "tests/integration/health.test.ts",
  "tests/integration/web-security.test.ts",
  "tests/integration/cluster-sync.test.ts",
  "tests/integration/cluster-three.test.ts",
  "tests/integration/config-history.test.ts",
  "tests/integration/config-cli.test.ts",
  "tests/integration/staged.test.ts",
  "tests/integration/one-farm-change.test.ts",
  "tests/unit/cluster-node-sync.test.ts",
  "tests/e2e/console.test.ts",
  "tests/e2e/auth.test.ts",
  "tests/e2e/setup.test.ts",
  "tests/e2e/farm-list.test.ts",
  "tests/e2e/nft-console.test.ts",
  "tests/e2e/cluster.test.ts",
  "tests/e2e/a11y.test.ts",
  "tests/e2e/config-history.test.ts",
  "tests/e2e/staged.test.ts",
  "tests/e2e/live-tables.test.ts",
];
// The engine matrix: these suites run a second time on the nftables engine
// (tests/helpers/engine.ts reads NATFARM_TEST_ENGINE); the first run is iptables.
const NFTABLES_FILES = [
  "tests/integration/traffic.test.ts",
  "tests/integration/schedulers.test.ts",
  "tests/integration/lifecycle.test.ts",
  "tests/integration/health.test.ts",
];
// CI must run the PostgreSQL half (and fail when the server is missing); a local run
// without a server says that it skips it instead.
const withPostgres = Boolean(process.env.NATFARM_TEST_POSTGRES_URL?.trim()) || process.env.CI === "true";
if (!withPostgres && !process.env.VITEST_WORKER_ID) {
  console.warn("natfarm: NATFARM_TEST_POSTGRES_URL is not set: the PostgreSQL half of the database tests is skipped (CI=true runs it)");
}

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname) } },
  test: {
    // Netfilter tests share one kernel: namespaces are unique per test, but
    // running files in parallel on 2 cores makes traffic tests slow and noisy.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      // db-postgres.test.ts is PostgreSQL's half of db.test.ts: it has no SQLite run.
      { extends: true, test: { name: "sqlite", include: ["tests/**/*.test.ts"], exclude: ["tests/integration/db-postgres.test.ts"] } },
      // …through libnftables sessions, as the agent runs nft (the sqlite project runs the nft -f fallback).
      { extends: true, test: { name: "nftables", include: NFTABLES_FILES, env: { NATFARM_TEST_ENGINE: "nftables", NATFARM_NFT_SESSION: "on" } } },
      ...(withPostgres ? [{ extends: true as const, test: { name: "postgresql", include: POSTGRES_FILES, env: { NATFARM_TEST_DATABASE: "postgresql" } } }] : []),
    ],
  },
});
