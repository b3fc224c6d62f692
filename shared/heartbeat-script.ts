/**
 * The heartbeat write, as one atomic Redis script, and the reply the agent acts on.
 *
 * KEYS: none (standalone Redis; keys from the prefix in ARGV[1])
 * ARGV[1] prefix, ARGV[2] instance id, ARGV[3] heartbeat JSON, ARGV[4] TTL ms,
 * ARGV[5] a fresh random incarnation id (used only if Redis has none yet).
 * The member set entry stays after a goodbye, so every tracker reads the goodbye; the
 * leader prunes members gone for long (leader/leader.ts).
 * Returns {existed, version, mode, incarnation, leaderInfo}:
 *   existed     1 if the key was still there (0 after an expiry or a Redis restart)
 *   version     the assignment version the leader has committed for this member ("0" if none)
 *   mode        the cluster flag mirror JSON ("" if unknown)
 *   incarnation this Redis lifetime's id
 *   leaderInfo  JSON {id, epoch, ready} ("" when no leader)
 *
 * The version in the reply is what makes renewal safe: the agent renews its worker's
 * lease only if it has loaded at least that version, so a leader's revocation cannot be
 * missed by an agent that keeps heartbeating but cannot read Postgres.
 */
export const HEARTBEAT_LUA = `
local p = ARGV[1]
local id = ARGV[2]
local key = p .. ':hb:' .. id
local existed = redis.call('EXISTS', key)
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
local t = redis.call('TIME')
redis.call('ZADD', p .. ':members', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), id)
local inc = redis.call('GET', p .. ':incarnation')
if not inc then
  inc = ARGV[5]
  redis.call('SET', p .. ':incarnation', inc)
end
local v = redis.call('HGET', p .. ':versions', id) or '0'
return {existed, v, redis.call('GET', p .. ':mode') or '', inc, redis.call('GET', p .. ':leader:info') or ''}
`;

/**
 * Publishes committed assignment versions, never lowering one (a deposed leader waking up
 * late must not roll a member's version back).
 * ARGV[1] prefix, then pairs id, version.
 */
export const PUBLISH_VERSIONS_LUA = `
local key = ARGV[1] .. ':versions'
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', key, ARGV[i]) or '0')
  local nv = tonumber(ARGV[i + 1])
  if nv > cur then redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
return 1
`;

/**
 * Sets the cluster-flag mirror only if its version is newer. ARGV[1] prefix, ARGV[2] JSON {mode, version}.
 */
export const PUBLISH_MODE_LUA = `
local key = ARGV[1] .. ':mode'
local nv = cjson.decode(ARGV[2])
local cur = redis.call('GET', key)
if cur then
  local c = cjson.decode(cur)
  if tonumber(c.version) >= tonumber(nv.version) then return 0 end
end
redis.call('SET', key, ARGV[2])
return 1
`;

/**
 * Writes the leader info only while the caller still holds the lease token.
 * KEYS[1] lease key, KEYS[2] info key; ARGV[1] token, ARGV[2] JSON, ARGV[3] TTL ms.
 */
export const PUBLISH_LEADER_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;
