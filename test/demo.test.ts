/**
 * `npm run demo`, run as a person runs it: in its own process group (a terminal's
 * foreground job), stopped with Ctrl-C (SIGINT to the whole group, so npm forwards it too).
 * - with throwaway servers: it starts, every catalog stream is served exactly once, the
 *   agents answer, and after Ctrl-C no process of the demo is left (agents, servers);
 * - with the local services: a second Ctrl-C stops it at once, and its database and Redis
 *   keys are gone afterwards (it never touches anything else);
 * - with nothing to use: one clear message saying what to install;
 * - with --failures (default stream-health settings): the agents carry LABELS exit=nl /
 *   exit=br, the geo-blocked stream shows failing with its error on an exit=nl worker and
 *   moves to an exit=br worker after STREAM_FAILOVER_AFTER (120 s), with no overlap.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { ServicesUnavailable, resolveServices } from "../tools/demo-services.js";
import { freePort } from "../tools/ports.js";
import { statusLine } from "../tools/demo-status.js";
import { DEAD_ERROR, GEO_ERROR, choose, demoLabels, explain, failureRules, whereNow } from "../tools/demo-failures.js";
import { failureOf } from "../tools/sim-worker.js";
import { processGroupAlive, waitFor } from "./helpers/cluster.js";
import { ADMIN_DATABASE_URL, REDIS_URL, connectTestRedis } from "./helpers/services.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CATALOG = 36;

interface Run {
  readonly proc: ChildProcess;
  out: string;
  /** npm's exit: after a Ctrl-C it waits for the demo, then re-raises SIGINT on itself (as a shell would). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const runs: Run[] = [];

function startDemo(args: string[], env: Record<string, string | undefined>): Run {
  const proc = spawn("npm", ["run", "demo", "--", ...args], { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const run: Run = { proc, out: "", exited: new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal }))) };
  proc.stdout!.on("data", (d: Buffer) => (run.out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (run.out += d.toString()));
  runs.push(run);
  return run;
}

/** Ctrl-C in a terminal: SIGINT to every process of the foreground group. */
function ctrlC(run: Run): void {
  process.kill(-run.proc.pid!, "SIGINT");
}

/** Processes started by one demo run (its agents carry FINGERV7_DEMO_RUN; its servers live in its temp dirs). */
function leftovers(runId: string, tempDirs: readonly string[]): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, "latin1");
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").replace(/\0/g, " ");
      if (environ.includes(`FINGERV7_DEMO_RUN=${runId}`) || tempDirs.some((d) => cmdline.includes(d))) found.push(`${pid}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

const groupGone = (run: Run) => !processGroupAlive(run.proc.pid!);

const SERVED_ALL = new RegExp(`served ${CATALOG}/${CATALOG} · overlaps 0`);

afterAll(() => {
  for (const r of runs) if (!groupGone(r)) process.kill(-r.proc.pid!, "SIGKILL");
});

describe("npm run demo", () => {
  it("with throwaway servers: serves every stream once, and Ctrl-C leaves nothing running", async () => {
    const run = startDemo(["--throwaway", "--port", "0", "--status-every", "1"], {});
    await waitFor(() => SERVED_ALL.test(run.out) || run.proc.exitCode !== null, 50_000, "every stream to be served", 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.out}`);
    });
    expect(run.proc.exitCode, run.out).toBeNull();
    expect(run.out).toMatch(/PostgreSQL: a throwaway PostgreSQL/);
    expect(run.out).toMatch(/Redis: +a throwaway Redis/);
    const runId = /logs in \.demo\/(\S+)/.exec(run.out)![1]!;
    const tempDirs = [...run.out.matchAll(/\/tmp\/fingerv7-demo-(?:pg|redis)-\w+/g)].map((m) => m[0]);
    // Every agent answers; the first one's URL is the dashboard's.
    const dashboard = /Dashboard: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(run.out)![1]!;
    const health = await fetch(`${dashboard}/health`);
    expect(health.status).toBe(200);
    const h = (await health.json()) as { leader: string | null; mode: string };
    expect(h.leader).toMatch(/^demo-[123]$/);
    expect(h.mode).toBe("orchestrated");
    expect(leftovers(runId, tempDirs).length).toBeGreaterThanOrEqual(3);
    const page = await fetch(`${dashboard}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");

    // The hint the demo prints: drain an agent with fingerctl and watch its streams move.
    const hint = /(ADMIN_TOKEN=\S+) npx fingerctl --url (\S+) drain (demo-\d)/.exec(run.out)!;
    expect(hint[2]).toBe(dashboard);
    const drained = hint[3]!;
    const ctl = spawnSync("npx", ["fingerctl", "--url", hint[2]!, "drain", drained], { cwd: ROOT, env: { ...process.env, ADMIN_TOKEN: hint[1]!.split("=")[1] }, encoding: "utf8", timeout: 60_000 });
    expect(ctl.status, ctl.stdout + ctl.stderr).toBe(0);
    const mark = run.out.length;
    const drainedLine = new RegExp(`served ${CATALOG}/${CATALOG} · overlaps 0 · .*${drained}\\*? 0/`);
    await waitFor(() => drainedLine.test(run.out.slice(mark)), 30_000, `${drained}'s streams to move`, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.out.slice(mark)}`);
    });
    expect(run.out.slice(mark)).not.toMatch(/overlaps [1-9]/);

    ctrlC(run);
    const exit = await run.exited;
    expect([0, "SIGINT"], run.out).toContain(exit.code ?? exit.signal);
    expect(run.out).toContain("Stopped; nothing left running.");
    expect(run.out).not.toMatch(/The demo failed|while stopping/);
    await waitFor(() => groupGone(run), 5000, "the demo's process group to be gone");
    expect(leftovers(runId, tempDirs)).toEqual([]);
  });

  it("with the local services: a second Ctrl-C stops at once, and its database and keys are removed", async () => {
    const run = startDemo(["--port", "0", "--status-every", "1"], { DATABASE_URL: ADMIN_DATABASE_URL, REDIS_URL });
    await waitFor(() => SERVED_ALL.test(run.out) || run.proc.exitCode !== null, 50_000, "every stream to be served", 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.out}`);
    });
    expect(run.out).toContain("PostgreSQL: DATABASE_URL");
    const database = /in database (fingerv7_demo_\w+)/.exec(run.out)![1]!;
    const prefix = /Redis key prefix (\S+)/.exec(run.out)![1]!;
    const runId = /logs in \.demo\/(\S+)/.exec(run.out)![1]!;

    ctrlC(run);
    await waitFor(() => run.out.includes("draining"), 10_000, "the drain to begin");
    await new Promise((r) => setTimeout(r, 1200)); // past the window that merges npm's forwarded copy
    const t0 = performance.now();
    ctrlC(run);
    await run.exited;
    expect(run.out).toContain("Second signal: stopping everything now.");
    expect(performance.now() - t0).toBeLessThan(5000);
    await waitFor(() => groupGone(run), 5000, "the demo's process group to be gone");
    expect(leftovers(runId, [])).toEqual([]);

    const sql = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
    const rows = await sql`select 1 from pg_database where datname = ${database}`;
    await sql.end({ timeout: 1 });
    expect(rows.length).toBe(0);
    const redis = await connectTestRedis();
    const keys = await redis.keys(`${prefix}:*`);
    redis.disconnect();
    expect(keys).toEqual([]);
  });

  it("with nothing to use: one message saying what to install, or to use docker compose", async () => {
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const err = await resolveServices({
      env: {},
      localPostgres: { host: "127.0.0.1", port: pgPort },
      localRedis: { host: "127.0.0.1", port: redisPort },
      postgresDirs: [],
      redisDirs: [],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServicesUnavailable);
    const message = (err as Error).message;
    expect(message).toContain(`nothing answers on 127.0.0.1:${pgPort}`);
    expect(message).toContain("redis-server is not on PATH");
    expect(message).toContain("apt-get install postgresql redis-server");
    expect(message).toContain("docker compose up");
  });

  it("prefers DATABASE_URL / REDIS_URL, then the standard local ports", async () => {
    const fromEnv = await resolveServices({ env: { DATABASE_URL: "postgres://u@db.example.invalid/x", REDIS_URL: "redis://cache.example.invalid:6379" } });
    expect([fromEnv.postgres.origin, fromEnv.redis.origin]).toEqual(["DATABASE_URL", "REDIS_URL"]);
    // On this machine (and in CI) PostgreSQL and Redis run on their standard ports.
    const local = await resolveServices({ env: {} });
    expect(local.postgres.origin).toContain("local server on 127.0.0.1:5432");
    expect(local.redis.origin).toContain("local server on 127.0.0.1:6379");
    await local.stop();
  });

  it("prints a status line that counts served streams and overlaps", () => {
    const line = statusLine(new Date(2026, 0, 1, 12, 0, 5), [
      { id: "a", capacity: 2, up: true, serving: ["1", "2"], mode: "orchestrated", leader: "b", epoch: 3, isLeader: false },
      { id: "b", capacity: 2, up: true, serving: ["2"], mode: "orchestrated", leader: "b", epoch: 3, isLeader: true },
      { id: "c", capacity: 1, up: false, serving: [] },
    ], 3);
    expect(line).toBe("[12:00:05] leader b (epoch 3) · orchestrated · served 2/3 · overlaps 1 · a 2/2 · b* 1/2 · c down");
  });

  it("--failures: picks a geo-blocked stream on an exit=nl worker and a dead one elsewhere", () => {
    expect([0, 1, 2, 3].map((i) => demoLabels(i).exit)).toEqual(["nl", "br", "nl", "br"]);
    const fleet = [
      { id: "demo-1", labels: demoLabels(0), serving: ["12", "3", "40"] },
      { id: "demo-2", labels: demoLabels(1), serving: ["5", "2"] },
      { id: "demo-3", labels: demoLabels(2), serving: [] },
    ];
    expect(choose([{ ...fleet[0]!, serving: [] }, fleet[1]!])).toBeUndefined();
    const c = choose(fleet)!;
    expect(c).toEqual({ geo: "3", dead: "2", geoOwner: "demo-1" });
    const rules = failureRules(c);
    expect(failureOf("3", demoLabels(0), rules)).toBe(GEO_ERROR);
    expect(failureOf("3", demoLabels(1), rules)).toBeUndefined();
    expect(failureOf("2", demoLabels(1), rules)).toBe(DEAD_ERROR);
    expect(whereNow(c, fleet)).toBe("geo-blocked 3 on demo-1 · dead 2 on demo-2");
    const text = explain(c, fleet, "http://127.0.0.1:8001").join("\n");
    expect(text).toContain("LABELS exit=nl on demo-1, demo-3; exit=br on demo-2");
    expect(text).toContain("npx fingerctl --url http://127.0.0.1:8001 streams --failing");
  });

  it("with --failures and the default stream-health settings: the geo-blocked stream fails on exit=nl and moves to exit=br", async () => {
    const run = startDemo(["--failures", "--port", "0", "--status-every", "1"], { DATABASE_URL: ADMIN_DATABASE_URL, REDIS_URL });
    await waitFor(() => /stream \d+ is geo-blocked/.test(run.out) || run.proc.exitCode !== null, 60_000, "the failure scenario to be armed", 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.out}`);
    });
    const [, geo, firstOwner] = /stream (\d+) is geo-blocked: fails on exit=nl .*; now on (demo-\d)/.exec(run.out)!;
    const dead = /stream (\d+) has a dead upstream/.exec(run.out)![1]!;
    const url = /Dashboard: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(run.out)![1]!;
    expect(run.out).toMatch(/LABELS exit=nl on demo-1, demo-3; exit=br on demo-2/);
    // Each agent's LABELS, as /instances shows them (from the members' heartbeats).
    const labels = async () => {
      const b = (await (await fetch(`${url}/instances`)).json()) as { instances: { instance_id: string; labels?: Record<string, string> }[] };
      return JSON.stringify(Object.fromEntries(b.instances.map((i) => [i.instance_id, i.labels?.exit])));
    };
    let seen = "";
    await waitFor(async () => (seen = await labels()) === JSON.stringify({ "demo-1": "nl", "demo-2": "br", "demo-3": "nl" }), 20_000, "the agents' labels in /instances", 500).catch((err: Error) => {
      throw new Error(`${err.message}: last seen ${seen}`);
    });
    // The geo-blocked stream shows failing with its error, as fingerctl prints it.
    const ctl = (...args: string[]) => spawnSync("npx", ["fingerctl", "--url", url, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    await waitFor(() => /health {5}failing since/.test(ctl("stream", geo!).stdout), 60_000, `stream ${geo} to show failing`, 2000);
    expect(ctl("streams", "--failing").stdout).toMatch(new RegExp(`^${geo}\\s+Rádio Demo .+\\s+${firstOwner}\\s+.*403 Forbidden \\(geo-blocked\\)$`, "m"));
    // After STREAM_FAILOVER_AFTER (120 s) it moves; it settles on exit=br (demo-2), maybe via demo-3.
    const moved = new RegExp(`geo-blocked ${geo} on demo-2 · dead ${dead} on `);
    await waitFor(() => moved.test(run.out), 300_000, `stream ${geo} to move to demo-2`, 1000).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.out.slice(-3000)}`);
    });
    expect(run.out).not.toMatch(/overlaps [1-9]/);
    ctrlC(run);
    await run.exited;
    expect(run.out).toContain("Stopped; nothing left running.");
  }, 420_000);
});
