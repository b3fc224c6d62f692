/**
 * README.md and docs/migration.md stay true to the code:
 * - the settings table lists exactly the settings loadConfig reads (names and aliases),
 *   and setting any documented default explicitly changes nothing;
 * - every endpoint the README lists is a route of the agent's HTTP app;
 * - every command the README gives is one another test or .ci/run exercises;
 * - the migration guide's SQL for announcing a legacy instance makes it a legacy member.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../shared/config.js";
import { readLegacyMembers } from "../shared/legacy.js";
import { TOKEN, startAgent, type RunningAgent } from "./http/fixture.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "./helpers/services.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");
const README = read("README.md");

function section(doc: string, heading: string): string {
  const start = doc.indexOf(`\n## ${heading}\n`);
  expect(start, `section "${heading}"`).toBeGreaterThanOrEqual(0);
  const next = doc.indexOf("\n## ", start + 4);
  return doc.slice(start, next < 0 ? undefined : next);
}

/** Table rows of a markdown section: cells, trimmed. */
function rows(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| ---"))
    .map((l) => l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
}

const codeNames = (cell: string) => [...cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);

/** The names loadConfig reads, recorded through a Proxy. */
function settingsRead(env: Record<string, string> = {}): Set<string> {
  const seen = new Set<string>();
  loadConfig(
    new Proxy(env, {
      get(target, key) {
        if (typeof key === "string") seen.add(key);
        return target[key as string];
      },
    }),
  );
  return seen;
}

describe("README: settings", () => {
  const table = rows(section(README, "Settings")).slice(1);

  it("lists every setting loadConfig reads, with its aliases, and nothing else", () => {
    const documented = new Set(table.flatMap((r) => [...codeNames(r[0]!), ...codeNames(r[1]!)]));
    const read = settingsRead();
    const missing = [...read].filter((n) => !documented.has(n));
    const stale = [...documented].filter((n) => !read.has(n));
    expect(missing, "settings read by shared/config.ts but missing from the README's settings table (add a row: name, aliases, default, meaning)").toEqual([]);
    expect(stale, "settings in the README's table that shared/config.ts does not read").toEqual([]);
  });

  it("documents defaults that loadConfig really uses", () => {
    const base = loadConfig({ INSTANCE_ID: "x" });
    let checked = 0;
    for (const r of table) {
      const name = codeNames(r[0]!)[0]!;
      const cell = r[2]!.replace(/`/g, "");
      const value = /(?:^|=\s*)([\w.:/-]+)$/.exec(cell)?.[1];
      if (!value || /^(the|none|unset|empty)$/.test(value) || /[A-Z]_/.test(value)) continue;
      expect(loadConfig({ INSTANCE_ID: "x", [name]: value }), `${name}=${value}`).toEqual(base);
      checked++;
    }
    expect(checked).toBeGreaterThan(25);
  });
});

describe("README: metrics", () => {
  it("lists every metric the agent exports, and only those", () => {
    const sources = ["shared/metrics.ts", ...fs.readdirSync(path.join(ROOT, "agent/http")).map((f) => `agent/http/${f}`)].filter((f) => f.endsWith(".ts"));
    const exported = new Set(sources.flatMap((f) => [...read(f).matchAll(/name: "(fingerv7_\w+)"/g)].map((m) => m[1]!)));
    const documented = new Set([...section(README, "Metrics").matchAll(/`(fingerv7_\w+)/g)].map((m) => m[1]!));
    expect([...exported].filter((n) => !documented.has(n)), "metrics exported but missing from the README's metrics table").toEqual([]);
    expect([...documented].filter((n) => !exported.has(n)), "metrics in the README that nothing exports").toEqual([]);
  });
});

describe("README: commands", () => {
  /** Every command the README gives, and the proof that something runs it. */
  const EXERCISED: [RegExp, string, string[]][] = [
    [/^npm ci$/, ".ci/run", ["npm ci"]],
    [/^npm test$/, ".ci/run", ["npm test"]],
    [/^npm run demo$/, "test/demo.test.ts", ['["run", "demo"']],
    [/^npm run build$/, "test/compose.test.ts", ['["run", "build"']],
    // `npm test` runs the fault suite too: the same config after the main run.
    [/^npm run test:faults$/, "package.json", ['"test:faults": "vitest run --config vitest.faults.config.ts"', "&& vitest run --config vitest.faults.config.ts"]],
    [/^npm run bench( -- --quick)?$/, "test/bench.test.ts", ['["run", "bench", "--", "--quick"']],
    [/^node --max-semi-space-size=1 --single-threaded --optimize-for-size dist\/agent\/main\.js$/, "test/compose.test.ts", ['CMD ["node", "--max-semi-space-size=1", "--single-threaded", "--optimize-for-size", "dist/agent/main.js"]', "production.slice(1, -1)"]],
    [/^npm run agent$/, "test/npm-agent.test.ts", ['spawn("npm", ["run", "agent"]', 'spawnSync("npm", ["run", "agent"]']],
    [/^npx fingerctl (status|instances|streams)$/, "test/cli/fingerctl.test.ts", ["bin/fingerctl.js", '"status"', '"instances"', '"streams"']],
    [/^npx fingerctl (drain|undrain) ID$/, "test/cli/fingerctl.test.ts", ['"drain"', '"undrain"']],
    [/^npx fingerctl mode (hashed|orchestrated)$/, "test/cli/fingerctl.test.ts", ['"mode"', '"hashed"', '"orchestrated"']],
    [/^npx fingerctl rebalance( --dry-run)?$/, "test/cli/fingerctl.test.ts", ['"rebalance"', '"--dry-run"']],
    [/^npx fingerctl (--url URL )?streams --failing$/, "test/cli/stream-health.test.ts", ['"streams", "--failing"']],
    [/^npx fingerctl (stream|retry) ID$/, "test/cli/stream-health.test.ts", ['"stream", String(victim)', '["retry"]']],
    [/^ADMIN_TOKEN=change-me-demo-token npx fingerctl --url URL retry \d+$/, "test/cli/stream-health.test.ts", ['"retry", String(victim)], { ADMIN_TOKEN: TOKEN }']],
    [/^npm run demo -- --failures$/, "test/demo.test.ts", ['"--failures"']],
    [/^npm run bench -- --fleet/, "test/bench.test.ts", ['["run", "bench", "--", "--fleet=']],
    [/^npm run bench -- --agents/, "test/bench.test.ts", ['["run", "bench", "--", "--agents=']],
    [/^npm run bench -- --tick/, "test/bench-tick.test.ts", ['["run", "bench", "--", "--tick=']],
    [/^npm run bench -- --plan-join/, "test/bench-plan-join.test.ts", ['["run", "bench", "--", "--plan-join=']],
    [/^ADMIN_TOKEN=change-me-demo-token npx fingerctl --url http:\/\/127\.0\.0\.1:8001 drain demo-2$/, "test/demo.test.ts", ['["fingerctl", "--url"', '"drain"']],
    [/^python3 -m unittest discover -s clients\/python$/, "test/python-client.test.ts", ['runUnittestSuite("clients/python")']],
    [/^apt-get install postgresql redis-server$/, ".ci/run", ["apt_install postgresql", "apt_install redis-server"]],
    // No Docker engine in CI: the files these run are checked by test/compose.test.ts.
    [/^docker build -t fingerv7-sidecar \.$/, "test/compose.test.ts", ['read("Dockerfile")']],
    [/^docker compose up( --build)?$/, "test/compose.test.ts", ['read("docker-compose.yml")']],
  ];
  const COMMAND = /^(npm|npx|node|python3|docker|apt-get|ADMIN_TOKEN=)/;

  function commands(doc: string): string[] {
    const found: string[] = [];
    for (const block of doc.matchAll(/```sh\n([\s\S]*?)```/g)) found.push(...block[1]!.split("\n"));
    const prose = doc.replace(/```[\s\S]*?```/g, "");
    for (const span of prose.matchAll(/`([^`]+)`/g)) found.push(span[1]!.replace(/\s+/g, " "));
    return found
      .flatMap((c) => c.split(" && "))
      .map((c) => c.replace(/\s+#.*$/, "").trim()) // a shell comment is not part of the command
      .filter((c) => COMMAND.test(c) && c.includes(" ")); // a program's bare name is not a command
  }

  it("gives only commands that a test or .ci/run exercises", () => {
    const given = commands(README);
    expect(given).toContain("npm ci");
    expect(given).toContain("npm test");
    expect(given).toContain("npm run demo");
    for (const cmd of given) {
      const hit = EXERCISED.find(([re]) => re.test(cmd));
      expect(hit, `README command not exercised anywhere: ${cmd}`).toBeDefined();
      // This file holds every piece of evidence in the table above: it proves nothing about itself.
      expect(hit![1], `${cmd}: the evidence must be in another file`).not.toBe("test/docs.test.ts");
      const source = read(hit![1]);
      for (const evidence of hit![2]) expect(source, `${hit![1]} runs ${cmd}`).toContain(evidence);
    }
  });

  it("keeps the sections that are filled in from elsewhere", () => {
    expect(README).toMatch(/\n## Safety model\n/);
    expect(README).toMatch(/\n## Benchmarks\n/);
    expect(README).toContain("](docs/migration.md)");
  });
});

describe("README: HTTP API", () => {
  let db: TestDatabase;
  let agent: RunningAgent;

  beforeAll(async () => {
    db = await createTestDatabase("docs");
    await createCatalog(db.sql, 4);
    agent = await startAgent({ id: "docs-1", databaseUrl: db.url, prefix: uniqueName("docs"), env: { ADMIN_TOKEN: TOKEN } });
  });

  afterAll(async () => {
    await agent?.close();
    await db?.drop();
  });

  it("lists only routes the agent serves", async () => {
    const calls = rows(section(README, "HTTP API"))
      .map((r) => /^`(GET|POST|PUT) ([^`\s[?]+)/.exec(r[0]!))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ method: m[1]!, path: m[2]!.replace(/:id/g, "docs-1") }));
    expect(calls.length).toBeGreaterThanOrEqual(14);
    for (const { method, path: p } of calls) {
      const ctl = new AbortController();
      const res = await agent.app.request(p, { method, signal: ctl.signal });
      const body = res.headers.get("content-type")?.includes("json") ? ((await res.json()) as { message?: string }) : {};
      ctl.abort(); // the event stream would go on
      await res.body?.cancel().catch(() => {});
      expect(res.status === 404 && String(body.message).startsWith("No route"), `${method} ${p} is not a route`).toBe(false);
    }
  });
});

describe("docs/migration.md", () => {
  it("announces a legacy instance with SQL that makes it a legacy member", async () => {
    const guide = read("docs/migration.md");
    const stmt = /`(insert into server_heartbeats[^`]+)`/.exec(guide)![1]!.replace(/'k'/g, "'3'");
    const db = await createTestDatabase("migration");
    try {
      await db.sql.unsafe("create table server_heartbeats (server_id varchar primary key, last_heartbeat timestamptz, status varchar, ip_address varchar, info jsonb)");
      await db.sql.unsafe(stmt);
      await db.sql.unsafe(stmt); // twice: it is an upsert
      const members = await readLegacyMembers(db.sql as never, "server_heartbeats", 180_000);
      expect(members.map((m) => m.id)).toEqual(["3"]);
    } finally {
      await db.drop();
    }
  });

  it("uses only settings the agents accept", () => {
    const guide = read("docs/migration.md");
    const env = Object.fromEntries([...guide.matchAll(/^([A-Z][A-Z0-9_]+)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(env).length).toBeGreaterThanOrEqual(5);
    const accepted = settingsRead();
    for (const key of Object.keys(env)) expect(accepted.has(key), `${key} is a setting`).toBe(true);
  });
});
