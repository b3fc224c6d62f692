/**
 * `npm run demo`: a whole cluster on one machine.
 *
 * PostgreSQL and Redis come from tools/demo-services.ts (DATABASE_URL / REDIS_URL, the
 * local ports, or throwaway servers). The demo gets its OWN database (or schemas) with a
 * catalog of 36 streams, and its own Redis key prefix, so existing data is never touched.
 * Then it starts agent processes with different capacities, a simulated fingerv7 worker
 * beside each (tools/sim-worker.ts: it obeys the lease and reports progress), prints the
 * dashboard URL and a one-line status every few seconds.
 *
 * Ctrl-C: the agents drain (hand their streams off) and exit, the workers stop, the demo
 * database and keys are removed, throwaway servers are stopped; nothing is left running.
 * A second Ctrl-C stops everything at once. Agents and servers run in their own process
 * groups so the terminal's Ctrl-C reaches only this process, which signals each child once.
 *
 * Options: --agents N (3..9, default 3) · --port P (first agent's port, default 8001;
 * 0 = any free ports) · --throwaway (start private PostgreSQL and Redis servers even when
 * others are available) · --status-every S (seconds between status lines, default 3) ·
 * --failures (tools/demo-failures.ts: LABELS exit=nl / exit=br, one geo-blocked stream and
 * one dead upstream, with the default stream-health settings).
 */
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { SimWorker, type Labels } from "./sim-worker.js";
import { arm, choose, demoLabels, explain, labelsText, whereNow, type Chosen } from "./demo-failures.js";
import { createDemoDatabase, type DemoDatabase } from "./demo-db.js";
import { ServicesUnavailable, resolveServices, type DemoServices } from "./demo-services.js";
import { freePort, portFree } from "./ports.js";
import { clearPrefix } from "./redis-keys.js";
import { statusLine, type AgentSample } from "./demo-status.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Capacities of the demo agents, in order: different on purpose (proportional shares). */
export const DEMO_CAPACITIES = [24, 20, 16, 12, 8, 18, 6, 14, 10] as const;
export const demoToken = "change-me-demo-token";
/** Agent settings for the demo: defaults, except a short drain so Ctrl-C is quick. */
const DEMO_SETTINGS: Record<string, string> = {
  HOST: "127.0.0.1",
  LOG_LEVEL: "info",
  ADMIN_TOKEN: demoToken,
  CATALOG_REFRESH: "2",
  DRAIN_TIMEOUT: "6",
  LOCATION: "demo",
};

interface DemoAgent {
  readonly id: string;
  readonly capacity: number;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  readonly labels: Labels;
  worker: SimWorker | undefined;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      agents: { type: "string", default: "3" },
      port: { type: "string", default: "8001" },
      throwaway: { type: "boolean", default: false },
      "status-every": { type: "string", default: "3" },
      failures: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    say(USAGE);
    return 0;
  }
  const agentCount = Number(values.agents);
  const basePort = Number(values.port);
  const statusEvery = Number(values["status-every"]);
  if (!Number.isInteger(agentCount) || agentCount < 3 || agentCount > DEMO_CAPACITIES.length) return usage(`--agents must be 3..${DEMO_CAPACITIES.length}`);
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65535 - agentCount) return usage("--port must be a port number (0 = any free ports)");
  if (!(statusEvery >= 0.5)) return usage("--status-every must be at least 0.5 seconds");

  const runId = `${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "")}-${crypto.randomBytes(3).toString("hex")}`;
  const runDir = path.join(ROOT, ".demo", runId);
  pruneOldRuns(path.join(ROOT, ".demo"));
  fs.mkdirSync(runDir, { recursive: true });
  const prefix = `fingerv7-demo-${runId.slice(-6)}`;
  // Every process this run starts (servers, agents) carries the run id in its environment,
  // so a leftover could be found by it; none should ever be left.
  process.env.FINGERV7_DEMO_RUN = runId;

  // Everything started is undone in reverse order, on success, failure or signal, by
  // main's `finally` (signals only ask for it, so startup and shutdown never interleave).
  const cleanups: { what: string; run: (now: boolean) => Promise<void> }[] = [];
  const agents: DemoAgent[] = [];
  let statusTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  let requestStop = () => {};
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  let firstSignalAt = 0;
  let hurry = false;

  const onSignal = (signal: NodeJS.Signals) => {
    const now = performance.now();
    if (!stopping) {
      stopping = true;
      firstSignalAt = now;
      say(`\n${signal}: stopping. The agents hand their streams off first (a few seconds); Ctrl-C again to stop at once.`);
      requestStop();
      return;
    }
    // One Ctrl-C can arrive twice: from the terminal and forwarded by `npm run`.
    if (now - firstSignalAt < 1000 || hurry) return;
    hurry = true;
    say("Second signal: stopping everything now.");
    for (const a of agents) signalGroup(a.proc, "SIGINT"); // an agent's second signal: exit at once
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Last resort if this process dies abnormally: no child outlives it.
  process.on("exit", () => {
    for (const a of agents) if (a.proc.exitCode === null && a.proc.signalCode === null) signalGroup(a.proc, "SIGKILL");
  });

  const interrupted = () => stopping;
  try {
    say("fingerv7 sidecar demo: a local cluster with simulated fingerv7 workers");
    let services: DemoServices;
    try {
      services = await resolveServices({ env: process.env, throwaway: values.throwaway, log: (l) => say(`  ${l}`) });
    } catch (err) {
      if (err instanceof ServicesUnavailable) {
        say(`\n${err.message}`);
        return 1;
      }
      throw err;
    }
    cleanups.push({ what: "throwaway servers", run: (now) => services.stop({ now }) });
    say(`  PostgreSQL: ${services.postgres.origin}`);
    say(`  Redis:      ${services.redis.origin}`);
    if (interrupted()) return 0;

    const db: DemoDatabase = await createDemoDatabase(services.postgres.url);
    cleanups.push({ what: "the demo database", run: () => db.drop() });
    cleanups.push({ what: "the demo's Redis keys", run: () => clearDemoKeys(services.redis.url, prefix) });
    const streams = await db.activeStreams();
    say(`  Catalog:    ${streams} streams in ${db.describe} (removed on exit); Redis key prefix ${prefix}`);
    if (interrupted()) return 0;

    const ports = await choosePorts(basePort, agentCount);
    cleanups.push({
      what: "the agents",
      run: async (now) => {
        await stopAgents(agents, now, () => hurry);
      },
    });
    for (let i = 0; i < agentCount; i++) {
      const id = `demo-${i + 1}`;
      const capacity = DEMO_CAPACITIES[i]!;
      const port = ports[i]!;
      const logFile = path.join(runDir, `${id}.log`);
      const labels = values.failures ? demoLabels(i) : {};
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        ...(process.env.TZ ? { TZ: process.env.TZ } : {}),
        FINGERV7_DEMO_RUN: runId,
        ...DEMO_SETTINGS,
        ...db.agentEnv,
        REDIS_URL: services.redis.url,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_ID: id,
        MAX_STREAMS: String(capacity),
        PORT: String(port),
        ...(values.failures ? { LABELS: labelsText(labels) } : {}),
      };
      const fd = fs.openSync(logFile, "a");
      const proc = spawn(process.execPath, ["--import", "tsx", "agent/main.ts"], { cwd: ROOT, env, detached: true, stdio: ["ignore", fd, fd] });
      fs.closeSync(fd);
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      agents.push({ id, capacity, port, url: `http://127.0.0.1:${port}`, logFile, proc, exited, labels, worker: undefined });
    }
    cleanups.push({
      what: "the simulated workers",
      run: async () => {
        for (const a of agents) await a.worker?.stop();
      },
    });
    say(`  Agents:     ${agents.map((a) => `${a.id} (capacity ${a.capacity}, port ${a.port})`).join(", ")}; logs in ${path.relative(process.cwd(), runDir) || runDir}`);

    await Promise.all(
      agents.map(async (a) => {
        await waitListening(a, 60_000, interrupted);
        if (interrupted()) return;
        a.worker = new SimWorker({ url: a.url, waitS: 10, reportEveryMs: 2000, labels: a.labels });
        a.worker.start();
      }),
    );
    if (interrupted()) return 0;

    const first = agents[0]!;
    say("");
    say(`Dashboard:  ${first.url}/   (every agent serves it: ${agents.slice(1).map((a) => `:${a.port}`).join(", ")})`);
    say(`Try:        npx fingerctl --url ${first.url} status        (also: instances, streams)`);
    say(`            ADMIN_TOKEN=${demoToken} npx fingerctl --url ${first.url} drain ${agents[1]!.id}   (then: undrain, mode hashed, mode orchestrated)`);
    say(`Metrics:    ${first.url}/metrics`);
    say("Stop:       Ctrl-C");
    say("");

    // --failures: once every worker kind serves something, two streams start failing.
    let chosen: Chosen | undefined;
    const tick = async () => {
      const samples: AgentSample[] = await Promise.all(agents.map((a) => sample(a)));
      const catalog = await db.activeStreams().catch(() => undefined);
      if (interrupted()) return;
      if (values.failures && !chosen) {
        chosen = choose(agents.map((a, i) => ({ id: a.id, labels: a.labels, serving: samples[i]!.serving })));
        if (chosen) {
          arm(agents.map((a) => a.worker!), chosen);
          for (const line of explain(chosen, agents, first.url)) say(line);
          say("");
        }
      }
      say(statusLine(new Date(), samples, catalog) + (chosen ? ` · ${whereNow(chosen, samples)}` : ""));
    };
    await tick();
    statusTimer = setInterval(() => void tick(), statusEvery * 1000);
    // Runs until a signal; an agent that dies on its own is shown as "down" in the status.
    await stopRequested;
    return 0;
  } catch (err) {
    say(`\nThe demo failed: ${err instanceof Error ? err.message : String(err)}`);
    for (const a of agents) {
      if (a.proc.exitCode !== null) say(`  ${a.id} exited (${a.proc.exitCode}); last lines of ${a.logFile}:\n${tail(a.logFile, 5)}`);
    }
    return 1;
  } finally {
    if (statusTimer) clearInterval(statusTimer);
    for (const c of cleanups.reverse()) {
      try {
        await c.run(hurry);
      } catch (err) {
        say(`  (while stopping ${c.what}: ${err instanceof Error ? err.message : String(err)})`);
      }
    }
    if (stopping) say("Stopped; nothing left running.");
  }
}

async function sample(a: DemoAgent): Promise<AgentSample> {
  const base = { id: a.id, capacity: a.capacity, serving: a.worker ? [...a.worker.serving] : [] };
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) return { ...base, up: false };
  try {
    const res = await fetch(`${a.url}/health`, { signal: AbortSignal.timeout(2000) });
    const h = (await res.json()) as { mode?: string; leader?: string | null; epoch?: number | null; is_leader?: boolean };
    return { ...base, up: true, mode: h.mode, leader: h.leader ?? null, epoch: h.epoch ?? null, isLeader: h.is_leader === true };
  } catch {
    return { ...base, up: false };
  }
}

/** SIGTERM to every agent at once; each drains and exits. Bounded: SIGKILL after DRAIN_TIMEOUT + 5 s. */
async function stopAgents(agents: readonly DemoAgent[], now: boolean, hurry: () => boolean): Promise<void> {
  const running = agents.filter((a) => a.proc.exitCode === null && a.proc.signalCode === null);
  if (running.length === 0) return;
  if (!now) say(`  draining ${running.map((a) => a.id).join(", ")} …`);
  for (const a of running) signalGroup(a.proc, now ? "SIGKILL" : "SIGTERM");
  const limitMs = (Number(DEMO_SETTINGS.DRAIN_TIMEOUT) + 5) * 1000;
  const t0 = performance.now();
  while (running.some((a) => a.proc.exitCode === null && a.proc.signalCode === null)) {
    if (performance.now() - t0 > limitMs || (hurry() && performance.now() - t0 > 3000)) {
      for (const a of running) signalGroup(a.proc, "SIGKILL");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.all(running.map((a) => a.exited));
  if (!now) say(`  agents stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function waitListening(a: DemoAgent, timeoutMs: number, interrupted: () => boolean): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs && !interrupted()) {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) {
      throw new Error(`agent ${a.id} exited at start (code ${a.proc.exitCode}); see ${a.logFile}:\n${tail(a.logFile, 5)}`);
    }
    const ok = await fetch(`${a.url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!interrupted()) throw new Error(`agent ${a.id} did not answer on ${a.url} within ${timeoutMs / 1000} s; see ${a.logFile}`);
}

/** base, base+1, … when all are free; any free ports otherwise (or when base is 0). */
async function choosePorts(base: number, n: number): Promise<number[]> {
  if (base > 0) {
    const wanted = Array.from({ length: n }, (_, i) => base + i);
    const free = await Promise.all(wanted.map((p) => portFree(p)));
    if (free.every(Boolean)) return wanted;
    say(`  ports ${base}-${base + n - 1} are not all free; using free ports instead`);
  }
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

async function clearDemoKeys(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  r.on("error", () => {});
  try {
    await r.connect();
    await clearPrefix(r, prefix);
  } finally {
    r.disconnect();
  }
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // The group is already gone.
  }
}

function pruneOldRuns(dir: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  try {
    for (const d of fs.readdirSync(dir)) {
      const p = path.join(dir, d);
      if (fs.statSync(p).mtimeMs < dayAgo) fs.rmSync(p, { recursive: true, force: true });
    }
  } catch {
    // No .demo directory yet.
  }
}

function tail(file: string, n: number): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-n).map((l) => `    ${l.slice(0, 400)}`).join("\n");
  } catch {
    return "    (no log)";
  }
}

const USAGE = "usage: npm run demo [-- --agents N] [--port P] [--throwaway] [--status-every S] [--failures]";

function usage(problem: string): number {
  say(`${problem}\n${USAGE}`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
