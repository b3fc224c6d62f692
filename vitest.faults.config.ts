import { defineConfig } from "vitest/config";

// The network-fault suite (npm run test:faults): every agent behind a fault proxy to each
// store, simulated workers recording what they serve, an independent checker. Files run one
// at a time: each starts a cluster of agent processes and measures timings on a 2-core box.
// The agents run the production command, the Dockerfile's CMD (its node flags and the built
// dist/agent/main.js, built first when older than a source: test/helpers/global-setup.ts).
// FAULT_RUNS (default 1) repeats every scenario with the next seeds; FAULT_SEED fixes the
// first seed; FAULT_RESULTS=path appends one JSON line per run.
export default defineConfig({
  test: {
    include: ["test/faults/**/*.fault.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["test/helpers/global-setup.ts"],
    reporters: ["default"],
  },
});
