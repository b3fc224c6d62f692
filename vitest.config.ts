import { defineConfig } from "vitest/config";

// Tests talk to real PostgreSQL and Redis (see test/helpers/services.ts). Timeouts are
// generous: CI machines are slow and busy; speed is measured by `npm run bench`, not here.
// Cluster tests run agent processes with the production command on the built dist/, built
// first when older than a source (test/helpers/global-setup.ts).
export default defineConfig({
  test: {
    // Unit tests of a small module may sit beside it (agent/http/require-admin.test.ts).
    include: ["test/**/*.test.ts", "agent/**/*.test.ts", "leader/**/*.test.ts", "shared/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Cluster tests spawn agent processes and measure failover; running them alongside
    // other files on a 2-core machine would starve them.
    fileParallelism: false,
    globalSetup: ["test/helpers/global-setup.ts"],
    reporters: ["default"],
  },
});
