/**
 * `npm run agent`, the README's command for one agent from the sources, run for real
 * (the package.json script, through npm) against real PostgreSQL and Redis:
 * - with a valid environment it answers /health on its PORT, and SIGTERM makes it hand off
 *   and exit 0 (npm reports the agent's own exit code), leaving no process behind;
 * - a bad setting stops it at start with one line naming the setting, exit code 2.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAST_TIMINGS, freePort, processGroupAlive, waitFor } from "./helpers/cluster.js";
import { REDIS_URL, clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "./helpers/services.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The agent's own node process under npm → sh → tsx. SIGTERM goes to it alone: a signal to
 * the whole group also reaches tsx, which relays it unless the agent reports it within
 * 30 ms, so on a loaded machine the agent may see it twice and take the second as "exit now".
 */
function agentProcess(group: number): number | undefined {
  const inGroup = fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
        const [ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ").slice(1, 3).map(Number);
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1");
        return pgrp === group && cmdline.includes("agent/main.ts") ? [{ pid: Number(pid), ppid: ppid! }] : [];
      } catch {
        return []; // it ended while we looked
      }
    });
  return inGroup.find((p) => !inGroup.some((c) => c.ppid === p.pid))?.pid;
}

describe("npm run agent", () => {
  let db: TestDatabase;
  const prefix = uniqueName("npmagent");

  beforeAll(async () => {
    db = await createTestDatabase("npmagent");
    await createCatalog(db.sql, 4);
  });

  afterAll(async () => {
    const redis = await connectTestRedis();
    await clearPrefix(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  const validEnv = (port: number): Record<string, string> => ({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    INSTANCE_ID: "npm-agent-1",
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    ...FAST_TIMINGS,
  });

  it("answers /health on its PORT, and SIGTERM makes it hand off and exit 0, leaving nothing running", { timeout: 120_000 }, async () => {
    const port = await freePort();
    const proc = spawn("npm", ["run", "agent"], { cwd: ROOT, env: validEnv(port), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    const groupAlive = () => processGroupAlive(proc.pid!);
    try {
      let health: { instance_id?: string } = {};
      await waitFor(async () => {
        if (proc.exitCode !== null) throw new Error(`npm run agent exited (${proc.exitCode}):\n${out}`);
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        health = (await res.json()) as { instance_id?: string };
        // Started, not just listening: a SIGTERM during the start only stops it (no hand-off to check).
        return out.includes('"msg":"agent registered"');
      }, 60_000, "npm run agent to answer /health").catch((err: Error) => {
        throw new Error(`${err.message}\n${out}`);
      });
      expect(health.instance_id).toBe("npm-agent-1");

      const agent = agentProcess(proc.pid!);
      expect(agent, "the agent's node process").toBeDefined();
      const t0 = performance.now();
      process.kill(agent!, "SIGTERM");
      expect(await exited, out).toBe(0);
      await waitFor(() => !groupAlive(), 5000, "every process of npm run agent to be gone");
      // Well within DRAIN_TIMEOUT + 5 s, after which the agent would exit 1 on its own.
      expect(performance.now() - t0).toBeLessThan((Number(FAST_TIMINGS.DRAIN_TIMEOUT) + 5) * 1000);
      const messages = out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(messages.map((m) => m.msg), out).toContain("shutting down");
      expect(messages.map((m) => m.msg), out).toContain("handed off; exiting");
      expect(messages.filter((m) => m.level !== "info").map((m) => m.msg), out).toEqual([]);
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    } finally {
      if (groupAlive()) process.kill(-proc.pid!, "SIGKILL");
    }
  });

  it.each([
    ["HEARTBEAT_INTERVAL", "abc", 'fingerv7-sidecar: Invalid setting HEARTBEAT_INTERVAL="abc": expected a duration in seconds between 0.01 and 86400 (decimals allowed, e.g. 5 or 0.2).'],
    ["PORT", "not-a-port", 'fingerv7-sidecar: Invalid setting PORT="not-a-port": expected a whole number between 0 and 65535.'],
  ])("a bad %s stops it at start with one line naming the setting (exit 2)", { timeout: 60_000 }, async (name, value, line) => {
    const env = { ...validEnv(await freePort()), [name]: value };
    const run = spawnSync("npm", ["run", "agent"], { cwd: ROOT, env, encoding: "utf8", timeout: 50_000 });
    expect(run.status, run.stdout + run.stderr).toBe(2);
    expect(run.stderr.split("\n").filter((l) => l.startsWith("fingerv7-sidecar:"))).toEqual([line]);
    expect(run.stdout + run.stderr).not.toMatch(/^\s+at /m); // a message, not a stack trace
  });
});
