/**
 * A SIGTERM while the agent is still starting (its schema perhaps not migrated yet): it
 * stops without a goodbye heartbeat it has nothing to say with, logs no warning or error,
 * and leaves nothing running. Regression: shutdown ran the hand-off and wrote a goodbye
 * heartbeat to a table the start had not created yet ("relation ... does not exist").
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/logger.js";
import { newAgent } from "../helpers/agents.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("shutdown during start", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("earlystop");
    await createCatalog(db.sql, 3);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("stops cleanly, with no warning, whatever point the start had reached", async () => {
    for (const delayMs of [0, 5, 20, 60]) {
      const lines: { level: string; msg: string }[] = [];
      const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(...chunk.toString().split("\n").filter(Boolean).map((l) => JSON.parse(l))), cb()) });
      const schema = uniqueName("early");
      const agent = newAgent({ id: `early-${delayMs}`, databaseUrl: db.url, prefix: schema, env: { ORCHESTRATOR_SCHEMA: schema }, logger: createLogger({ level: "info", destination: sink }) });
      const started = agent.start().catch(() => {});
      await new Promise((r) => setTimeout(r, delayMs));
      await agent.shutdown();
      await started;
      const loud = lines.filter((l) => l.level !== "info" && l.level !== "debug");
      expect(loud, JSON.stringify(lines)).toEqual([]);
    }
  });
});
