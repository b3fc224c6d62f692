/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine:
 * - the compose file parses; its services, healthchecks, dependencies and the sidecar
 *   wiring are what the README promises; every environment key an agent gets is a setting
 *   shared/config.ts reads, and the agents' environments load with loadConfig;
 * - the Dockerfile is multi-stage, runs as a non-root user, starts `node
 *   --max-semi-space-size=1 --single-threaded --optimize-for-size dist/agent/main.js` and
 *   checks /health; what it builds (`npm run build`, the sim-worker compile line) runs:
 *   the built agent is one self-contained ASCII file, becomes healthy against real
 *   PostgreSQL and Redis when started by the CMD (its V8 flags included), the Dockerfile's
 *   HEALTHCHECK command passes against it, and the built simulated worker serves the
 *   catalog.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../shared/config.js";
import { freePort, waitFor } from "./helpers/cluster.js";
import { REDIS_URL, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "./helpers/services.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: { context: string; target?: string };
  environment?: Env;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  network_mode?: string;
  volumes?: string[];
  command?: string[];
}
const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const AGENTS = ["agent-1", "agent-2", "agent-3"];

/** The names loadConfig reads: recorded through a Proxy while it loads `env`. */
function settingsRead(env: Env): Set<string> {
  const seen = new Set<string>();
  const proxy = new Proxy(env, {
    get(target, key) {
      if (typeof key === "string") seen.add(key);
      return target[key as string];
    },
  });
  loadConfig(proxy);
  return seen;
}

/** Dockerfile stages: name → instructions (continuation lines joined). */
function dockerfileStages(text: string): { name: string; lines: string[] }[] {
  const joined = text.replace(/\\\n\s*/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const stages: { name: string; lines: string[] }[] = [];
  for (const line of joined) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ name: from[1] ?? `#${stages.length}`, lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

describe("docker-compose.yml", () => {
  it("has postgres, redis, three agents and a simulated worker beside each", () => {
    expect(Object.keys(services).sort()).toEqual(["agent-1", "agent-2", "agent-3", "postgres", "redis", "worker-1", "worker-2", "worker-3"]);
    expect(services.postgres!.image).toMatch(/^postgres:\d+/);
    expect(services.redis!.image).toMatch(/^redis:\d+/);
    expect(services.postgres!.healthcheck?.test.join(" ")).toContain("pg_isready");
    expect(services.redis!.healthcheck?.test.join(" ")).toContain("ping");
    // The catalog the agents read is created from a file that exists.
    const init = services.postgres!.volumes!.find((v) => v.includes("docker-entrypoint-initdb.d"))!;
    expect(fs.existsSync(path.join(ROOT, init.split(":")[0]!))).toBe(true);
  });

  it("builds every agent from the Dockerfile's agent stage, waits for healthy services, and publishes the dashboard", () => {
    const stages = dockerfileStages(read("Dockerfile")).map((s) => s.name);
    for (const id of AGENTS) {
      const s = services[id]!;
      expect(s.build?.context).toBe(".");
      expect(stages).toContain(s.build?.target);
      expect(s.depends_on).toEqual({ postgres: { condition: "service_healthy" }, redis: { condition: "service_healthy" } });
      expect(s.healthcheck?.test.join(" ")).toContain("/health");
      expect(s.ports?.length).toBe(1);
      expect(s.ports![0]!.split(":").at(-1)).toBe(s.environment!.PORT);
    }
    expect(services["agent-1"]!.ports).toEqual(["8001:8001"]);
    const published = AGENTS.map((id) => services[id]!.ports![0]!.split(":")[0]);
    expect(new Set(published).size).toBe(AGENTS.length);
  });

  it("gives the agents distinct ids and capacities, and only settings that loadConfig reads and accepts", () => {
    const accepted = settingsRead({});
    expect(accepted.has("SERVER_ID") && accepted.has("DB_TABLE_NAME") && !accepted.has("NOT_A_SETTING")).toBe(true);
    const ids = new Set<string>();
    const capacities = new Set<number>();
    for (const id of AGENTS) {
      const env = services[id]!.environment!;
      for (const key of Object.keys(env)) expect(accepted.has(key) || settingsRead(env).has(key), `${id}: ${key} is not a setting`).toBe(true);
      const config = loadConfig(env);
      ids.add(config.instanceId);
      capacities.add(config.maxStreams);
      expect(config.instanceId).toBe(id);
      // Wired to the compose services, with the postgres service's own credentials.
      const db = new URL(config.databaseUrl);
      const pg = services.postgres!.environment!;
      expect([db.hostname, db.port, db.pathname.slice(1), db.username, decodeURIComponent(db.password)]).toEqual(["postgres", "5432", pg.POSTGRES_DB, pg.POSTGRES_USER, pg.POSTGRES_PASSWORD]);
      expect(config.redisUrls.map((u) => new URL(u).hostname)).toEqual(["redis"]);
      expect(config.adminToken).toBeDefined();
      expect(config.useOrchestrator).toBe(true);
    }
    expect(ids.size).toBe(3);
    expect(capacities.size).toBe(3);
    // Credentials are placeholders, never real ones.
    expect(services.postgres!.environment!.POSTGRES_PASSWORD).toMatch(/change-me/);
    expect(services["agent-1"]!.environment!.ADMIN_TOKEN).toMatch(/change-me/);
  });

  it("runs each worker in its agent's network namespace, started once the agent is healthy", () => {
    const stages = dockerfileStages(read("Dockerfile")).map((s) => s.name);
    const simSource = read("tools/sim-worker-main.ts");
    for (const [i, agent] of AGENTS.entries()) {
      const w = services[`worker-${i + 1}`]!;
      expect(w.network_mode).toBe(`service:${agent}`);
      expect(w.depends_on).toEqual({ [agent]: { condition: "service_healthy" } });
      expect(stages).toContain(w.build?.target);
      expect(w.ports).toBeUndefined();
      expect(new URL(w.environment!.AGENT_URL!).host).toBe(`localhost:${services[agent]!.environment!.PORT}`);
      for (const key of Object.keys(w.environment!)) expect(simSource, `${key} is read by tools/sim-worker-main.ts`).toMatch(new RegExp(`process\\.env\\.${key}\\b|"${key}"`));
    }
  });
});

describe("Dockerfile", () => {
  const stages = dockerfileStages(read("Dockerfile"));
  const final = stages.at(-1)!;

  it("is multi-stage; the default (last) stage runs node --max-semi-space-size=1 --single-threaded --optimize-for-size dist/agent/main.js as a non-root user with a /health check", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(final.name).toBe("agent");
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(final.lines.filter((l) => /^CMD\s/i.test(l)).at(-1)).toBe('CMD ["node", "--max-semi-space-size=1", "--single-threaded", "--optimize-for-size", "dist/agent/main.js"]');
    expect(final.lines.find((l) => /^HEALTHCHECK\s/i.test(l))).toContain("/health");
    // The final image carries no dev dependencies and no sources.
    for (const copy of final.lines.filter((l) => /^COPY\s/i.test(l))) expect(copy).toMatch(/^COPY (--from=(deps|build) |package\.json |bin )/);
    expect(stages.find((s) => s.name === "deps")!.lines.join("\n")).toContain("npm ci --omit=dev");
  });

  it("copies only paths that exist and that .dockerignore lets through", () => {
    const ignored = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    for (const stage of stages) {
      for (const line of stage.lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))) {
        const parts = line.split(/\s+/).slice(1).filter((p) => !p.startsWith("--"));
        for (const src of parts.slice(0, -1)) {
          expect(fs.existsSync(path.join(ROOT, src)), `${src} exists`).toBe(true);
          expect(ignored.some((i) => src === i || src.startsWith(`${i}/`)), `${src} is not in .dockerignore`).toBe(false);
        }
      }
    }
  });

  describe("what it builds runs", () => {
    let db: TestDatabase | undefined;
    const procs: ChildProcess[] = [];
    const out = path.join(ROOT, "test-output", uniqueName("image"));

    afterAll(async () => {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      await db?.drop();
      fs.rmSync(out, { recursive: true, force: true });
    });

    it("the built agent becomes healthy, passes the HEALTHCHECK, and the built worker serves the catalog", async () => {
      // `npm run build`, as the Dockerfile runs it, into a private directory.
      expect(stages.find((s) => s.name === "build")!.lines).toContain("RUN npm run build");
      const build = spawnSync("npm", ["run", "build", "--", "--outDir", path.join(out, "dist")], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
      expect(build.status, build.stdout + build.stderr).toBe(0);
      // The bundle carries the driver as tools/patch-postgres.mjs left it (npm ci runs it;
      // esbuild drops the patch's comments, not its code).
      expect(fs.readFileSync(path.join(out, "dist", "agent", "main.js"), "utf8").includes("fetchArrayTypes().catch("), "the bundled PostgreSQL driver is patched").toBe(true);
      const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
      // The sim-worker compile line, exactly as the Dockerfile has it (output redirected).
      const simLine = stages.find((s) => s.name === "build")!.lines.find((l) => l.startsWith("RUN ") && l.includes("tools/sim-worker-main.ts"))!;
      const args = simLine.replace(/^RUN\s+npx\s+tsc\s+/, "").split(/\s+/);
      expect(args).toContain("--outDir");
      args[args.indexOf("--outDir") + 1] = path.join(out, "dist-sim");
      const simBuild = spawnSync(process.execPath, [tsc, ...args], { cwd: ROOT, encoding: "utf8" });
      expect(simBuild.status, simBuild.stdout + simBuild.stderr).toBe(0);

      db = await createTestDatabase("image");
      await createCatalog(db.sql, 12);
      const port = await freePort();
      const env: Env = {
        PATH: process.env.PATH ?? "",
        ...services["agent-1"]!.environment!,
        DATABASE_URL: db.url,
        REDIS_URL,
        REDIS_KEY_PREFIX: uniqueName("image"),
        PORT: String(port),
        HOST: "127.0.0.1",
        DRAIN_TIMEOUT: "2",
        LOG_LEVEL: "warn",
      };
      // The agent's entry is one bundle (tools/build.mjs): nothing relative to import, no
      // character outside ASCII (V8 would hold the whole text at two bytes a character).
      const main = path.join(out, "dist", "agent", "main.js");
      const bundle = fs.readFileSync(main, "utf8");
      expect(bundle).not.toMatch(/\bfrom\s*["']\.{1,2}\//);
      expect(bundle).not.toMatch(/\bimport\(\s*["']\.{1,2}\//);
      expect(/[^\x00-\x7f]/.test(bundle), "non-ASCII character in the bundle").toBe(false);
      // Started exactly as the Dockerfile's CMD starts it (its flags, then the entry).
      const production = JSON.parse(final.lines.filter((l) => /^CMD\s/i.test(l)).at(-1)!.replace(/^CMD\s+/, "")) as string[];
      expect(production.at(-1)).toBe("dist/agent/main.js");
      const agent = spawn(process.execPath, [...production.slice(1, -1), main], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      procs.push(agent);
      const agentLog: string[] = [];
      agent.stdout!.on("data", (d: Buffer) => agentLog.push(d.toString()));
      agent.stderr!.on("data", (d: Buffer) => agentLog.push(d.toString()));
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 30_000, "the built agent to be healthy");

      // The Dockerfile's HEALTHCHECK, run as Docker would (exec form), against this agent.
      const hc = /^HEALTHCHECK\s.*?CMD\s+(\[.*\])$/.exec(final.lines.find((l) => /^HEALTHCHECK\s/i.test(l))!)![1]!;
      const [cmd, ...hcArgs] = JSON.parse(hc) as string[];
      expect(cmd).toBe("node");
      const probe = spawnSync(process.execPath, hcArgs, { env: { PATH: env.PATH, PORT: String(port) }, encoding: "utf8", timeout: 10_000 });
      expect(probe.status, probe.stderr).toBe(0);

      // fingerctl as the image has it: bin/ beside dist/, no TypeScript sources, no tsx.
      fs.mkdirSync(path.join(out, "bin"));
      fs.copyFileSync(path.join(ROOT, "bin", "fingerctl.js"), path.join(out, "bin", "fingerctl.js"));
      const ctl = spawnSync(process.execPath, [path.join(out, "bin", "fingerctl.js"), "--url", `http://127.0.0.1:${port}`, "status"], { env: { PATH: env.PATH }, encoding: "utf8", timeout: 30_000 });
      expect(ctl.status, ctl.stdout + ctl.stderr).toBe(0);
      expect(ctl.stdout).toMatch(/^Cluster, as seen by agent-1/);

      const worker = spawn(process.execPath, [path.join(out, "dist-sim", "tools", "sim-worker-main.js")], {
        cwd: ROOT,
        env: { PATH: env.PATH, AGENT_URL: `http://127.0.0.1:${port}`, POLL_WAIT: "2", REPORT_EVERY: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      procs.push(worker);
      let workerOut = "";
      worker.stdout!.on("data", (d: Buffer) => (workerOut += d.toString()));
      worker.stderr!.on("data", (d: Buffer) => (workerOut += d.toString()));
      await waitFor(() => /processing 12 stream\(s\)/.test(workerOut), 30_000, `the built worker to serve the catalog (${workerOut})`);

      const workerExit = new Promise<number | null>((r) => worker.once("exit", (c) => r(c)));
      const agentExit = new Promise<number | null>((r) => agent.once("exit", (c) => r(c)));
      worker.kill("SIGTERM");
      expect(await workerExit).toBe(0);
      expect(workerOut).toMatch(/processing 0 stream\(s\)/);
      agent.kill("SIGTERM");
      expect(await agentExit, agentLog.join("")).toBe(0);
    });
  });
});
