/**
 * A simulated fingerv7 worker as a process of its own: the container beside each agent in
 * docker-compose.yml (it shares the agent's network namespace, so the agent is on
 * localhost, exactly like a real fingerv7 next to its sidecar).
 *
 * It runs tools/sim-worker.ts (long-polls GET /v1/assignment, obeys lease_ms, reports with
 * POST /v1/report) and prints one line whenever the set of streams it processes changes.
 *
 * Environment: AGENT_URL (default http://localhost:8001), POLL_WAIT (long-poll seconds,
 * default 10), REPORT_EVERY (seconds between reports, default 5). SIGTERM/SIGINT: stop.
 */
import { SimWorker } from "./sim-worker.js";

function seconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 300) {
    process.stderr.write(`sim-worker: invalid ${name}=${JSON.stringify(raw)}: expected seconds between 0 and 300\n`);
    process.exit(2);
  }
  return n;
}

const url = (process.env.AGENT_URL ?? "http://localhost:8001").replace(/\/+$/, "");
const waitS = seconds("POLL_WAIT", 10);
const reportEveryMs = Math.round(seconds("REPORT_EVERY", 5) * 1000);

function log(msg: string): void {
  process.stdout.write(`${new Date().toISOString()} sim-worker ${msg}\n`);
}

const worker = new SimWorker({
  url,
  waitS,
  reportEveryMs,
  onChange: (serving) => {
    const ids = [...serving].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
    log(`processing ${ids.length} stream(s)${ids.length ? `: ${ids.join(", ")}` : ""}`);
  },
});

// Connection trouble is shown once when it starts and once when it ends.
let shownError: string | undefined;
setInterval(() => {
  if (worker.lastError === shownError) return;
  shownError = worker.lastError;
  log(shownError ? `cannot reach the agent (${shownError}); streams stop when the lease runs out` : "agent reachable again");
}, 2000).unref();

log(`following ${url}/v1/assignment (long-poll ${waitS} s, report every ${reportEveryMs / 1000} s)`);
worker.start();

let stopping = false;
const stop = (signal: string) => {
  if (stopping) process.exit(1);
  stopping = true;
  log(`${signal}: stopping every stream`);
  void worker.stop().then(() => process.exit(0));
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
