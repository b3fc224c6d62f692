/**
 * Every Lua script this project runs on Redis. Each header lists KEYS, ARGV and the
 * reply; shared/redis-protocol.ts is the only caller and decodes the replies. Scripts
 * never build a key name: every key comes from shared/keys.ts as KEYS, except the
 * snapshot's per-member heartbeat keys (see SNAPSHOT).
 */

export interface ScriptDef {
  /** How many leading arguments are KEYS. */
  readonly numberOfKeys: number;
  readonly lua: string;
}

/**
 * The heartbeat write, atomically, and everything the agent acts on in its reply.
 * The member set entry stays after a goodbye, so every tracker reads the goodbye; the
 * leader prunes members gone for long (leader/leader.ts).
 *
 * KEYS[1] this instance's heartbeat key   KEYS[4] versions hash
 * KEYS[2] members sorted set              KEYS[5] cluster-flag mirror
 * KEYS[3] incarnation                     KEYS[6] leader info
 * ARGV[1] instance id, ARGV[2] heartbeat JSON, ARGV[3] TTL ms,
 * ARGV[4] a fresh random incarnation id (written only if Redis has none yet).
 * Reply {existed, version, mode, incarnation, leaderInfo}:
 *   existed     1 if the key was still there (0 after an expiry, a deletion or a Redis restart)
 *   version     the assignment version the leader has committed for this member ("0" if none)
 *   mode        the cluster flag mirror JSON ("" if unknown)
 *   incarnation this Redis lifetime's id
 *   leaderInfo  JSON {id, epoch, ready} ("" when no leader)
 *
 * The version only speeds things up: when it is newer than what the agent has loaded,
 * the agent re-reads its rows now instead of at its next poll. Renewing the worker's
 * lease does not depend on it. A revoked stream stays safe without it because moves are
 * break-before-make: the leader gives the stream away only once this member's heartbeat
 * stops listing it in `held`, or once this member is dead.
 */
export const HEARTBEAT: ScriptDef = {
  numberOfKeys: 6,
  lua: `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
local inc = redis.call('GET', KEYS[3])
if not inc then
  inc = ARGV[4]
  redis.call('SET', KEYS[3], inc)
end
local v = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
return {existed, v, redis.call('GET', KEYS[5]) or '', inc, redis.call('GET', KEYS[6]) or ''}
`,
};

/**
 * One round trip that reads everything the membership tracker needs, atomically.
 *
 * KEYS[1] members sorted set, KEYS[2] incarnation, KEYS[3] leader info, KEYS[4] cluster-flag mirror
 * ARGV[1] the heartbeat key prefix (Keys.heartbeatPrefix). For every id in KEYS[1] the
 *   script reads ARGV[1] .. id: keys it can only name after reading the set, so they are
 *   not declared in KEYS. On a single Redis that is harmless; on Redis Cluster they would
 *   have to share KEYS[1]'s slot through a hash tag, which the key names do not carry
 *   (see shared/keys.ts), so this script is not Cluster-safe.
 * Reply {incarnation, leaderInfo, mode, ids, payloads, pttls}:
 *   incarnation, leaderInfo, mode   as stored, "" when absent
 *   ids        the members, in set order
 *   payloads   each member's heartbeat JSON, "" when its key is gone
 *   pttls      each heartbeat key's PTTL in ms (-2 when gone)
 */
export const SNAPSHOT: ScriptDef = {
  numberOfKeys: 4,
  lua: `
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local payloads = {}
local ttls = {}
for i, id in ipairs(ids) do
  payloads[i] = redis.call('GET', ARGV[1] .. id) or ''
  ttls[i] = redis.call('PTTL', ARGV[1] .. id)
end
return {redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[4]) or '', ids, payloads, ttls}
`,
};

/**
 * Publishes committed assignment versions, never lowering one (a deposed leader waking up
 * late must not roll a member's version back).
 *
 * KEYS[1] versions hash
 * ARGV pairs: instance id, version (a decimal integer)
 * Reply: how many versions were raised.
 */
export const PUBLISH_VERSIONS: ScriptDef = {
  numberOfKeys: 1,
  lua: `
local raised = 0
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local nv = tonumber(ARGV[i + 1])
  if nv > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    raised = raised + 1
  end
end
return raised
`,
};

/**
 * Sets the cluster-flag mirror only if its version is newer than the stored one.
 *
 * KEYS[1] cluster-flag mirror
 * ARGV[1] JSON {mode, version}
 * Reply: 1 written, 0 when the stored version is the same or newer.
 */
export const PUBLISH_MODE: ScriptDef = {
  numberOfKeys: 1,
  lua: `
local nv = cjson.decode(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cjson.decode(cur)
  if tonumber(c.version) >= tonumber(nv.version) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`,
};

/**
 * Writes the leader info only while the caller still holds the lease token.
 *
 * KEYS[1] lease key, KEYS[2] leader info
 * ARGV[1] lease token, ARGV[2] JSON {id, epoch, ready}, ARGV[3] TTL ms
 * Reply: 1 written, 0 when the lease holds another token (or none).
 */
export const PUBLISH_LEADER: ScriptDef = {
  numberOfKeys: 2,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`,
};
