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

/** Lua: the Redis time (ms) of a stream id "ms-seq". */
const MS = `local function ms(x) return tonumber(string.match(x, '^(%d+)')) end`;

/** Lua: whether a stored leader info JSON names ARGV[1]. */
const NAMES_ARGV1 = `local function names(raw)
  if not raw then return false end
  local ok, l = pcall(cjson.decode, raw)
  return ok and type(l) == 'table' and l.id == ARGV[1]
end`;

/**
 * The heartbeat write, atomically, and everything the agent acts on in its reply: two
 * commands whatever the fleet's size (HMGET of the cluster hash, XADD to the feed), a
 * third (HSET) only when the heartbeat says something new, for the leader (its feed id
 * into `lmark`) and once per Redis lifetime (the incarnation), a fourth (GET of the old
 * leader info) only while the agent sees no live leader named in the cluster hash.
 *
 * KEYS[1] heartbeat feed (stream), KEYS[2] cluster hash, KEYS[3] leader info (old key)
 * ARGV[1] instance id, ARGV[2] heartbeat JSON, ARGV[3] the heartbeat's TTL ms,
 * ARGV[4] a fresh random incarnation id (written only if Redis has none yet),
 * ARGV[5] "1" when the heartbeat says something new (see Keys.feed), else "0",
 * ARGV[6] the feed's cap (FEED_MAXLEN), ARGV[7] the feed id of this member's last
 * confirmed heartbeat ("" if none), ARGV[8] "1" to read the old leader info key too.
 * The heartbeat itself goes into the cluster hash (`hb:<id>`, with `hbid:<id>` = the feed
 * id that wrote it) when its entry is marked new: always when `hbid:<id>` is missing.
 * Reply {existed, version, mode, incarnation, leader, leaderPub, leaderMark, feedId, oldLeader}:
 *   existed     what a heartbeat key with this TTL would have said: 1 if this member's
 *               record was there and its last confirmed heartbeat (ARGV[7]) is younger
 *               than the TTL by Redis's clock (feed ids are Redis times); 0 after a
 *               deletion, a prune, Redis losing its data, or a silence of a TTL
 *   version     the assignment version the leader has committed for this member ("0" if none)
 *   mode        the cluster flag mirror JSON ("" if unknown)
 *   incarnation this Redis lifetime's id
 *   leader, leaderPub  the leader info JSON and "<seq> <Redis ms> <TTL ms>" of its last
 *               publication, as stored ("" when none; shared/leader-watch.ts judges them)
 *   leaderMark  "<feed id> <leader id>" of the named leader's last heartbeat ("" if none yet):
 *               followers watch the leader's progress through it without reading the membership
 *   feedId      this heartbeat's feed id
 *   oldLeader   the old leader info key's JSON when ARGV[8] asked for it ("" otherwise)
 *
 * The version only speeds things up: when it is newer than what the agent has loaded,
 * the agent re-reads its rows now instead of at its next poll. Renewing the worker's
 * lease does not depend on it. A revoked stream stays safe without it because moves are
 * break-before-make: the leader gives the stream away only once this member's heartbeat
 * stops listing it in `held`, or once this member is dead.
 */
export const HEARTBEAT: ScriptDef = {
  numberOfKeys: 3,
  lua: `
${MS}
local id = ARGV[1]
local r = redis.call('HMGET', KEYS[2], 'inc', 'mode', 'v:' .. id, 'lmark', 'leader', 'leaderPub', 'hbid:' .. id)
local c = ARGV[5]
local existed = 1
if not r[7] then
  existed = 0
  c = '1'
end
local fid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'id', id, 'c', c)
if existed == 1 and ARGV[7] ~= '' and ms(fid) - ms(ARGV[7]) >= tonumber(ARGV[3]) then existed = 0 end
local set = {}
if c == '1' then
  set[#set + 1] = 'hb:' .. id
  set[#set + 1] = ARGV[2]
  set[#set + 1] = 'hbid:' .. id
  set[#set + 1] = fid
end
local inc = r[1]
if not inc then
  inc = ARGV[4]
  set[#set + 1] = 'inc'
  set[#set + 1] = inc
end
local leader = r[5] or ''
local lmark = r[4] or ''
if leader ~= '' then
  local ok, l = pcall(cjson.decode, leader)
  if ok and type(l) == 'table' and l.id == id then
    lmark = fid .. ' ' .. id
    set[#set + 1] = 'lmark'
    set[#set + 1] = lmark
  end
end
if #set > 0 then redis.call('HSET', KEYS[2], unpack(set)) end
local old = ''
if ARGV[8] == '1' then old = redis.call('GET', KEYS[3]) or '' end
return {existed, r[3] or '0', r[2] or '', inc, leader, r[6] or '', lmark, fid, old}
`,
};

/** How many hash fields one HMGET of a script asks for at most (Lua's stack bounds unpack). */
const FIELDS_PER_HMGET = 500;

/**
 * A decider's read of the membership: the feed entries after its cursor, one per member
 * (its latest; c = "1" if any of its entries said something new), the heartbeats of the
 * members that said something new (every member's on a whole read) and what the tracker
 * needs beside them. Two commands (XRANGE, HMGET; a whole read adds TIME, the old leader
 * info a GET, and every FIELDS_PER_HMGET heartbeats fetched one HMGET more), one round trip.
 *
 * KEYS[1] heartbeat feed, KEYS[2] cluster hash, KEYS[3] leader info (old key)
 * ARGV[1] the cursor: the last feed id read, or "" for a whole read (a decider's first
 *   read, after a gap, or after Redis lost its data): every entry of the last ARGV[2] ms
 *   by Redis's clock, which holds every live member's latest heartbeat when ARGV[2]
 *   exceeds their heartbeat interval (the tracker passes two HEARTBEAT_TIMEOUTs).
 * ARGV[2] the whole read's window in ms. ARGV[3] "1" to read the old leader info key too.
 * Reply {incarnation, mode, leader, leaderPub, oldLeader, time, ids, feedIds, changed, heartbeats, last}:
 *   incarnation, mode, leader, leaderPub, oldLeader   as stored, "" when absent
 *   time       Redis's TIME in ms on a whole read, "" otherwise
 *   ids, feedIds, changed   per member in the range: its id, its latest feed id, "1"/"0"
 *   heartbeats per member: its stored heartbeat if it was fetched (changed, or a whole
 *              read), "" otherwise or when it has none
 *   last       the last feed id in the range ("" when none): the next cursor
 * Entries are dropped only past FEED_MAXLEN; a reader that keeps up within its gap bound
 * (the tracker's maxGap) never misses one while the fleet beats fewer than FEED_MAXLEN
 * times in that bound.
 */
export const FEED_READ: ScriptDef = {
  numberOfKeys: 3,
  lua: `
local entries
local now = ''
if ARGV[1] == '' then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  now = string.format('%.0f', ms)
  entries = redis.call('XRANGE', KEYS[1], string.format('%.0f', math.max(0, ms - tonumber(ARGV[2]))), '+')
else
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
end
local at = {}
local ids, fids, cs, hbs = {}, {}, {}, {}
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
local want, fields = {}, {'inc', 'mode', 'leader', 'leaderPub'}
for k, id in ipairs(ids) do
  hbs[k] = ''
  if ARGV[1] == '' or cs[k] == '1' then want[#want + 1] = k end
end
local head = math.min(#want, ${FIELDS_PER_HMGET})
for i = 1, head do fields[#fields + 1] = 'hb:' .. ids[want[i]] end
local r = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, head do hbs[want[i]] = r[4 + i] or '' end
for from = head + 1, #want, ${FIELDS_PER_HMGET} do
  local more = {}
  local to = math.min(#want, from + ${FIELDS_PER_HMGET} - 1)
  for i = from, to do more[#more + 1] = 'hb:' .. ids[want[i]] end
  local m = redis.call('HMGET', KEYS[2], unpack(more))
  for i = from, to do hbs[want[i]] = m[i - from + 1] or '' end
end
local old = ''
if ARGV[3] == '1' then old = redis.call('GET', KEYS[3]) or '' end
return {r[1] or '', r[2] or '', r[3] or '', r[4] or '', old, now, ids, fids, cs, hbs, last}
`,
};

/**
 * One member's latest heartbeat as the feed and the cluster hash have it, for the
 * duplicate-instance check at start: TIME, XRANGE of the last ARGV[2] ms, HGET.
 *
 * KEYS[1] heartbeat feed, KEYS[2] cluster hash
 * ARGV[1] instance id, ARGV[2] how far back to look, in ms
 * Reply {heartbeat, feedId, time}: its stored heartbeat ("" if none), the feed id of its
 * latest entry in that window ("" if none), Redis's TIME in ms.
 */
export const READ_MEMBER: ScriptDef = {
  numberOfKeys: 2,
  lua: `
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[1], string.format('%.0f', math.max(0, ms - tonumber(ARGV[2]))), '+')
local last = ''
for _, e in ipairs(entries) do
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'id' and f[j + 1] == ARGV[1] then last = e[1] end
  end
end
return {redis.call('HGET', KEYS[2], 'hb:' .. ARGV[1]) or '', last, string.format('%.0f', ms)}
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
 * Writes the leader info only while the caller still holds the lease token: into the
 * cluster hash (`leader`, and `leaderPub` = "<seq> <Redis ms> <the lease's PTTL>", what
 * heartbeats read and shared/leader-watch.ts judges), and into the old leader info key
 * with a TTL (what agents before the cluster hash read). Each publication changes
 * `leaderPub` (ARGV[4] is the publisher's counter); a follower counts the info as live
 * for the lease's remaining TTL from when it saw it change, so the info cannot outlive
 * the lease by more than the follower's delay in seeing it (leader/elector.ts).
 *
 * KEYS[1] lease key, KEYS[2] cluster hash, KEYS[3] leader info (old key)
 * ARGV[1] lease token, ARGV[2] JSON {id, epoch, ready}, ARGV[3] TTL ms, ARGV[4] a counter
 * Reply: 1 written, 0 when the lease holds another token (or none).
 */
export const PUBLISH_LEADER: ScriptDef = {
  numberOfKeys: 3,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = tonumber(ARGV[3]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'leader', ARGV[2], 'leaderPub', ARGV[4] .. ' ' .. string.format('%.0f', now) .. ' ' .. left)
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
`,
};

/**
 * Removes the leader info, in the cluster hash and in the old key, wherever it names this
 * instance: a leader that stopped leading tells everyone at once (their next heartbeat
 * reply), so followers try the lease without waiting for the info to age.
 *
 * KEYS[1] cluster hash, KEYS[2] leader info (old key)
 * ARGV[1] instance id
 * Reply: 1 removed (from either), 0 when both name another instance (or are gone).
 */
export const CLEAR_LEADER: ScriptDef = {
  numberOfKeys: 2,
  lua: `
${NAMES_ARGV1}
local removed = 0
if names(redis.call('HGET', KEYS[1], 'leader')) then
  redis.call('HDEL', KEYS[1], 'leader', 'leaderPub')
  removed = 1
end
if names(redis.call('GET', KEYS[2])) then
  redis.call('DEL', KEYS[2])
  removed = 1
end
return removed
`,
};
