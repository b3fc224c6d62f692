/**
 * Every Lua script this project runs on Redis. Each header lists KEYS, ARGV and the
 * reply; shared/redis-protocol.ts is the only caller and decodes the replies. Scripts
 * never build a key name: every key comes from shared/keys.ts as KEYS.
 */

export interface ScriptDef {
  /** How many leading arguments are KEYS. */
  readonly numberOfKeys: number;
  readonly lua: string;
}

/** How many entries the heartbeat feed keeps (about: MAXLEN ~). See FEED_READ. */
export const FEED_MAXLEN = 50_000;

/**
 * The heartbeat write, atomically, and everything the agent acts on in its reply: four
 * commands whatever the fleet's size (SET, XADD, HMGET, GET), a fifth only for the leader
 * (its feed id into `lmark`) and once per Redis lifetime (the incarnation).
 *
 * KEYS[1] this instance's heartbeat key   KEYS[3] cluster hash
 * KEYS[2] heartbeat feed (stream)         KEYS[4] leader info
 * ARGV[1] instance id, ARGV[2] heartbeat JSON, ARGV[3] TTL ms,
 * ARGV[4] a fresh random incarnation id (written only if Redis has none yet),
 * ARGV[5] "1" when the heartbeat says something new (see Keys.feed), else "0",
 * ARGV[6] the feed's cap (FEED_MAXLEN).
 * Reply {existed, version, mode, incarnation, leaderInfo, leaderMark, feedId}:
 *   existed     1 if the key was still there (0 after an expiry, a deletion or a Redis restart)
 *   version     the assignment version the leader has committed for this member ("0" if none)
 *   mode        the cluster flag mirror JSON ("" if unknown)
 *   incarnation this Redis lifetime's id
 *   leaderInfo  JSON {id, epoch, ready} ("" when no leader)
 *   leaderMark  "<feed id> <leader id>" of the leader's last heartbeat ("" if none yet):
 *               followers watch the leader's progress through it without reading the membership
 *   feedId      this heartbeat's feed id
 * A member whose key was gone marks its entry new (c = "1"): deciders fetch it again.
 *
 * The version only speeds things up: when it is newer than what the agent has loaded,
 * the agent re-reads its rows now instead of at its next poll. Renewing the worker's
 * lease does not depend on it. A revoked stream stays safe without it because moves are
 * break-before-make: the leader gives the stream away only once this member's heartbeat
 * stops listing it in `held`, or once this member is dead.
 */
export const HEARTBEAT: ScriptDef = {
  numberOfKeys: 4,
  lua: `
local old = redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'GET')
local existed = 0
local c = ARGV[5]
if old then existed = 1 else c = '1' end
local fid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'id', ARGV[1], 'c', c)
local r = redis.call('HMGET', KEYS[3], 'inc', 'mode', 'v:' .. ARGV[1], 'lmark')
local inc = r[1]
if not inc then
  inc = ARGV[4]
  redis.call('HSET', KEYS[3], 'inc', inc)
end
local leader = redis.call('GET', KEYS[4]) or ''
local lmark = r[4] or ''
if leader ~= '' then
  local ok, l = pcall(cjson.decode, leader)
  if ok and type(l) == 'table' and l.id == ARGV[1] then
    lmark = fid .. ' ' .. ARGV[1]
    redis.call('HSET', KEYS[3], 'lmark', lmark)
  end
end
return {existed, r[3] or '0', r[2] or '', inc, leader, lmark, fid}
`,
};

/**
 * A decider's read of the membership: the feed entries after its cursor, one per member
 * (its latest; c = "1" if any of its entries said something new), and what the tracker
 * needs beside them. Three commands (XRANGE, HMGET, GET; a whole read adds TIME) whatever the number of entries;
 * the caller then fetches only the heartbeats that changed.
 *
 * KEYS[1] heartbeat feed, KEYS[2] cluster hash, KEYS[3] leader info
 * ARGV[1] the cursor: the last feed id read, or "" for a whole read (a decider's first
 *   read, after a gap, or after Redis lost its data): every entry of the last ARGV[2] ms
 *   by Redis's clock (one TIME more), which holds every live member's latest heartbeat
 *   when ARGV[2] exceeds their heartbeat interval (the tracker passes two HEARTBEAT_TIMEOUTs).
 * ARGV[2] the whole read's window in ms.
 * Reply {incarnation, leaderInfo, mode, ids, feedIds, changed, last}:
 *   incarnation, leaderInfo, mode   as stored, "" when absent
 *   ids, feedIds, changed   per member in the range: its id, its latest feed id, "1"/"0"
 *   last       the last feed id in the range ("" when none): the next cursor
 * Entries are dropped only past FEED_MAXLEN; a reader that keeps up within its gap bound
 * (the tracker's maxGap) never misses one while the fleet beats fewer than FEED_MAXLEN
 * times in that bound.
 */
export const FEED_READ: ScriptDef = {
  numberOfKeys: 3,
  lua: `
local entries
if ARGV[1] == '' then
  local t = redis.call('TIME')
  local since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
  entries = redis.call('XRANGE', KEYS[1], tostring(math.max(0, since)), '+')
else
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
end
local at = {}
local ids, fids, cs = {}, {}, {}
local last = ''
for _, e in ipairs(entries) do
  local f = e[2]
  local id, c = '', '0'
  for j = 1, #f, 2 do
    if f[j] == 'id' then id = f[j + 1] elseif f[j] == 'c' then c = f[j + 1] end
  end
  local k = at[id]
  if not k then
    k = #ids + 1
    at[id] = k
    ids[k] = id
    cs[k] = '0'
  end
  fids[k] = e[1]
  if c == '1' then cs[k] = '1' end
  last = e[1]
end
local r = redis.call('HMGET', KEYS[2], 'inc', 'mode')
return {r[1] or '', redis.call('GET', KEYS[3]) or '', r[2] or '', ids, fids, cs, last}
`,
};

/**
 * Publishes committed assignment versions, never lowering one (a deposed leader waking up
 * late must not roll a member's version back), into the cluster hash (`v:<id>`, what
 * heartbeats read) and the versions hash (what agents before the cluster hash read).
 *
 * KEYS[1] cluster hash, KEYS[2] versions hash
 * ARGV pairs: instance id, version (a decimal integer)
 * Reply: how many versions were raised.
 */
export const PUBLISH_VERSIONS: ScriptDef = {
  numberOfKeys: 2,
  lua: `
local raised = 0
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], 'v:' .. ARGV[i]) or '0')
  local nv = tonumber(ARGV[i + 1])
  if nv > cur then
    redis.call('HSET', KEYS[1], 'v:' .. ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    raised = raised + 1
  end
end
return raised
`,
};

/**
 * Sets the cluster-flag mirror only if its version is newer than the stored one: the
 * cluster hash's `mode` (what heartbeats read) and the mode key (what agents before the
 * cluster hash read).
 *
 * KEYS[1] cluster hash, KEYS[2] mode key
 * ARGV[1] JSON {mode, version}
 * Reply: 1 written, 0 when the stored version is the same or newer.
 */
export const PUBLISH_MODE: ScriptDef = {
  numberOfKeys: 2,
  lua: `
local nv = cjson.decode(ARGV[1])
local cur = redis.call('HGET', KEYS[1], 'mode')
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and tonumber(c.version) and tonumber(c.version) >= tonumber(nv.version) then return 0 end
end
redis.call('HSET', KEYS[1], 'mode', ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
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

/**
 * Removes the leader info if it names this instance: a leader that stopped leading tells
 * everyone at once (their next heartbeat reply), so followers try the lease without
 * waiting for the info's TTL.
 *
 * KEYS[1] leader info
 * ARGV[1] instance id
 * Reply: 1 removed, 0 when it names another instance (or is gone).
 */
export const CLEAR_LEADER: ScriptDef = {
  numberOfKeys: 1,
  lua: `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, l = pcall(cjson.decode, cur)
if ok and type(l) == 'table' and l.id == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`,
};
