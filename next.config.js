/**
 * The console runs on one appliance, offline. Native and process-spawning
 * packages stay outside the server bundle: better-sqlite3 and koffi (the
 * target lock's flock, lib/sys/flock.ts) are compiled addons
 * and execa must resolve its own helpers at run time.
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  poweredByHeader: false,
  // A second build directory lets a developer build and serve beside another
  // build of the same checkout (two builds into one .next corrupt it).
  distDir: process.env.NATFARM_NEXT_DIST_DIR || ".next",
  // The app's own type check: tests and benches are checked by `npm run
  // typecheck`, and a half-written test must not stop the console's build.
  typescript: { tsconfigPath: "tsconfig.app.json" },
  serverExternalPackages: ["better-sqlite3", "@node-rs/argon2", "@prisma/adapter-better-sqlite3", "@prisma/client", "execa", "pino", "koffi"],
};

export default nextConfig;
