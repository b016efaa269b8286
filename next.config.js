/**
 * The console runs on one appliance, offline. Native and process-spawning
 * packages stay outside the server bundle: better-sqlite3 is a compiled addon
 * and execa must resolve its own helpers at run time.
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  poweredByHeader: false,
  serverExternalPackages: ["better-sqlite3", "@prisma/adapter-better-sqlite3", "@prisma/client", "execa", "pino"],
  turbopack: {
    // lib/lab locates its helper scripts with new URL("../../scripts/",
    // import.meta.url), which Turbopack tries to bundle as an asset. The
    // console sets NATFARM_LAB_SCRIPTS_DIR, which that code reads first, so
    // the URL is never used: point the reference at any real file.
    resolveAlias: { "../../scripts/": "./scripts/" },
  },
  experimental: {
    serverActions: {
      // Imports of large farm files go through a server action.
      bodySizeLimit: "8mb",
    },
  },
};

export default nextConfig;
