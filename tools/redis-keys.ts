/** Deletes every key under `prefix:` (SCAN, never KEYS: the server keeps answering others meanwhile). */
import type { Redis } from "ioredis";
import { Keys } from "../shared/keys.js";

export async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", new Keys(prefix).pattern, "COUNT", 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
}
