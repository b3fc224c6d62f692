/**
 * The Redis client factory against a real Sentinel group (a primary, a replica, three
 * sentinels on free ports): clients reach the master through the sentinels, an "end"
 * that ioredis imposes mid-reconnect is undone, and a READONLY reply drops the
 * connection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { closeRedis, createRedis, type RedisTarget } from "../../shared/redis.js";
import { waitFor } from "../helpers/cluster.js";
import { MASTER_NAME, SentinelGroup } from "../helpers/sentinel.js";

describe("Redis clients through Sentinel", { timeout: 60_000 }, () => {
  let group: SentinelGroup;
  let target: RedisTarget;
  const clients: Redis[] = [];
  const open = (t: RedisTarget) => {
    const c = createRedis(t, { commandTimeoutMs: 500 });
    clients.push(c);
    return c;
  };
  /** Commands fail fast while not connected (no offline queue): wait for the connection. */
  const ready = async (c: Redis) => void (await waitFor(() => c.status === "ready", 5000, "the client to connect"));

  beforeAll(async () => {
    group = await SentinelGroup.start({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
    const sentinels = [...group.sentinels.keys()].map((port) => ({ host: "127.0.0.1", port }));
    target = { sentinel: { sentinels, name: MASTER_NAME, password: undefined, sentinelPassword: undefined } };
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await closeRedis(c);
    await group?.stop();
  });

  it("reaches the master the sentinels name", async () => {
    const c = open(target);
    await ready(c);
    await c.set("probe", "1");
    const master = await group.master();
    expect(group.cli(master, "GET", "probe").trim()).toBe("1");
    expect(((await c.call("ROLE")) as string[])[0]).toBe("master");
  });

  it("reconnects a client that ioredis ended while it was asking the sentinels", async () => {
    const c = open(target);
    let ended = false;
    c.on("end", () => (ended = true));
    // What the failover detector does on +switch-master: disconnect the connector. While
    // a connect is resolving the master, ioredis 6 then ends the client for good.
    (c as unknown as { connector: { disconnect(): void } }).connector.disconnect();
    await waitFor(() => ended, 5000, "ioredis to end the client");
    await waitFor(async () => (await c.ping().catch(() => "")) === "PONG", 5000, "the client to be reconnected");
  });

  it("a client closed on purpose stays closed", async () => {
    const c = open(target);
    await ready(c);
    await closeRedis(c);
    await new Promise((r) => setTimeout(r, 600));
    expect(c.status).toBe("end");
  });

  it("a READONLY reply fails the command and drops the connection", async () => {
    const master = await group.master();
    const replica = [...group.nodes.keys()].find((p) => p !== master)!;
    const c = open(`redis://127.0.0.1:${replica}`);
    await ready(c);
    const err = await c.eval("redis.call('SET', 'k', 'v') return 1", 0).catch((e: Error) => e);
    expect(String(err)).toMatch(/READONLY/);
    await waitFor(() => c.status !== "ready", 2000, "the connection to be dropped");
    await waitFor(() => c.status === "ready", 5000, "the client to reconnect");
  });
});
