/**
 * The Prometheus text of a REAL in-process agent once it leads (so the leader-only series
 * exist), on real PostgreSQL and Redis: what the deploy/ files' metric names are checked
 * against. Everything it creates (database, Redis keys) is removed before it returns.
 */
import { createApp } from "../../agent/http/app.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName } from "../helpers/services.js";

const STREAMS = 6;

export async function leaderMetricsText(tag: string): Promise<string> {
  const db = await createTestDatabase(tag);
  const prefix = uniqueName(tag);
  try {
    await createCatalog(db.sql, STREAMS);
    const agent = newAgent({ id: `${tag}-1`, databaseUrl: db.url, prefix });
    const app = createApp(agent);
    try {
      await agent.start();
      let text = "";
      const leaderLines = () => text.split("\n").filter((l) => /^fingerv7_(is_leader|cluster_streams)\{/.test(l)).join("; ");
      await waitFor(
        async () => {
          const res = await app.request("/metrics");
          text = await res.text();
          return res.status === 200 && /^fingerv7_is_leader\{[^}]*\} 1$/m.test(text) && new RegExp(`^fingerv7_cluster_streams\\{state="assigned"[^}]*\\} ${STREAMS}$`, "m").test(text);
        },
        45_000,
        "the agent to lead and export the leader's series",
        200,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last scrape: ${leaderLines() || "(no leader series)"}`);
      });
      return text;
    } finally {
      await agent.close();
    }
  } finally {
    const redis = await connectTestRedis();
    await clearPrefix(redis, prefix).finally(() => redis.disconnect());
    await db.drop();
  }
}
