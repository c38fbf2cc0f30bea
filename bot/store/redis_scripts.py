"""The Lua scripts behind RedisStore: each multi-step change runs in Redis as one atomic step.

A script either runs whole or not at all, so a replica that dies (or loses its connection)
between two steps cannot leave a job in the stream twice, or nowhere. Every script takes the
key prefix as ARGV[1] and builds per-job keys from it (`<prefix>job:<id>`); the fixed keys
come in KEYS. Numbers travel as strings; a Lua number handed back to Redis is truncated to an
integer, so fractions go back as strings.

Job hash fields the scripts use: status (queued|running|done|failed), entry (the stream entry
that carries the job while it is queued or running), lease_owner (the consumer running it),
attempts, epoch (claims that changed hands: with lease_owner it fences a claim's writes),
user_id, chat_id, message_id, model, duration, audio_seconds, created_at, subject (whose limits
it counts against), charge_key and charged (its quota charge: the day's total, and its share).
"""

from __future__ import annotations

from bot.store.base import REPLACEABLE_STATUSES

# The states in which a job asked for again is replaced (base.py's rule, as a Lua set).
_REPLACEABLE = (
    "local replaceable = {"
    + ", ".join(f"['{status}'] = true" for status in sorted(REPLACEABLE_STATUSES))
    + "}\n"
)

# Shared by finish and add_usage: the aggregates behind usage_since and stats.
RECORD_USAGE = """
local function record_usage(p, user, chat, model, audio, tin, tout, day, keep, chats_cap)
  audio, tin, tout, keep = tonumber(audio), tonumber(tin), tonumber(tout), tonumber(keep)
  if keep > 0 then
    local mine = p .. 'usage:user:' .. user .. ':' .. day
    redis.call('HINCRBY', mine, model .. '|n', 1)
    if audio > 0 then redis.call('HINCRBYFLOAT', mine, model .. '|s', audio) end
    if tin > 0 then redis.call('HINCRBY', mine, model .. '|i', tin) end
    if tout > 0 then redis.call('HINCRBY', mine, model .. '|o', tout) end
    redis.call('EXPIRE', mine, keep)
  end
  if tin > 0 or tout > 0 then
    redis.call('HINCRBY', p .. 'usage:tokens', model .. '|n', 1)
    redis.call('HINCRBY', p .. 'usage:tokens', model .. '|i', tin)
    redis.call('HINCRBY', p .. 'usage:tokens', model .. '|o', tout)
  end
  if audio <= 0 then return end
  redis.call('HINCRBYFLOAT', p .. 'usage:models', model, audio)
  if keep > 0 then
    local daily = p .. 'usage:day:' .. day
    redis.call('HINCRBYFLOAT', daily, model, audio)
    redis.call('EXPIRE', daily, keep)
  end
  local chats, counts = p .. 'usage:chats', p .. 'usage:chat_jobs'
  redis.call('ZINCRBY', chats, audio, chat)
  redis.call('HINCRBY', counts, chat, 1)
  -- Bounded: the smallest chats make room (the top five are never near the cut).
  local over = redis.call('ZCARD', chats) - tonumber(chats_cap)
  if over > 0 then
    local gone = redis.call('ZRANGE', chats, 0, over - 1)
    redis.call('ZREMRANGEBYRANK', chats, 0, over - 1)
    redis.call('HDEL', counts, unpack(gone))
  end
end
"""

# Seen updates: one bit per update id in a bitmap per 65,536 ids (a key per id would cost
# about 100 bytes each), set when the update is accepted; while a replica handles it, a short
# "pending" key of its own. KEYS: bitmap, pending key. ARGV: bit, holder's token, hold in ms.
# Returns 1: claimed; 0: accepted before; -1: another holder has it now.
CLAIM_UPDATE = """
if redis.call('GETBIT', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return -1
"""

# KEYS: bitmap, pending key. ARGV: bit, holder's token, seconds the bitmap is kept.
CONFIRM_UPDATE = """
redis.call('SETBIT', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: pending key. ARGV: holder's token. Only the holder lets go of its claim.
FORGET_UPDATE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The limits, checked alike for a job (ACCEPT) and a request (ACCEPT_REQUEST), with the
# numbers base.py's rules make (Limits.rate_since, Limits.quota_ceiling): nil within them, else
# {'over_rate', when the job or request that holds the limit came} or {'over_quota'}.
OVER_LIMITS = """
local function over_limits(p, subject, per_minute, since, ceiling, day)
  if per_minute > 0 then
    -- The per_minute-th newest still counted: when it stops counting, one more fits.
    local found = redis.call('ZREVRANGEBYSCORE', p .. 'limit:' .. subject .. ':jobs', '+inf',
      '(' .. since, 'WITHSCORES', 'LIMIT', per_minute - 1, 1)
    if #found > 0 then return {'over_rate', found[2]} end
  end
  if ceiling then
    local quota = p .. 'quota:' .. subject .. ':' .. day
    if tonumber(redis.call('HGET', quota, 'total') or '0') > ceiling then
      return {'over_quota'}
    end
  end
  return nil
end
"""

# Accepting an update: its seen mark, the limits, the job and its quota charge, in one step.
# KEYS: ready stream, status counts, finished set, failures list, seen bitmap, pending key.
# ARGV: prefix, uniqueness suffix, subject, now, jobs per minute, the quota's ceiling (the most
# the day's charges may be: base.quota_ceiling; "" for no quota), seconds to reserve, since when
# jobs count against the per-minute limit, the day's name, bit in the bitmap ("" for no update),
# holder's token, seconds the bitmap is kept, seconds charges are kept, then the job's
# field/value pairs. Returns {outcome, job id} or, for over_rate, {outcome, '', when the job
# that holds the limit was accepted}.
ACCEPT = (
    _REPLACEABLE
    + OVER_LIMITS
    + """
local p, now = ARGV[1], tonumber(ARGV[4])
local function mark_seen()
  if ARGV[10] == '' then return end
  redis.call('SETBIT', KEYS[5], ARGV[10], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[12])
  if redis.call('GET', KEYS[6]) == ARGV[11] then redis.call('DEL', KEYS[6]) end
end
if ARGV[10] ~= '' and redis.call('GETBIT', KEYS[5], ARGV[10]) == 1 then return {'seen'} end
local uniq = p .. 'job:uniq:' .. ARGV[2]
local id = redis.call('GET', uniq)
local old
if id then
  old = p .. 'job:' .. id
  if not replaceable[redis.call('HGET', old, 'status')] then
    mark_seen()
    return {'exists', id}
  end
end
local subject = ARGV[3]
local refused = over_limits(p, subject, tonumber(ARGV[5]), ARGV[8], tonumber(ARGV[6]), ARGV[9])
if refused then
  mark_seen()
  return {refused[1], '', refused[2]}
end
local times = p .. 'limit:' .. subject .. ':jobs'
local quota = p .. 'quota:' .. subject .. ':' .. ARGV[9]
if old then
  -- Failed: asking again starts it afresh, under the same id.
  redis.call('HINCRBY', KEYS[2], 'failed', -1)
  redis.call('ZREM', KEYS[3], id)
  redis.call('LREM', KEYS[4], 0, id)
  local was = redis.call('HGET', old, 'subject')
  if was then redis.call('ZREM', p .. 'limit:' .. was .. ':jobs', id) end
  redis.call('DEL', old)
else
  id = redis.call('INCR', p .. 'job:next')
end
local key = p .. 'job:' .. id
redis.call('HSET', key, unpack(ARGV, 14))
local entry = redis.call('XADD', KEYS[1], '*', 'job', id)
redis.call('HSET', key, 'id', id, 'status', 'queued', 'attempts', 0, 'epoch', 0,
  'created_at', ARGV[4], 'entry', entry, 'subject', subject, 'charge_key', quota,
  'charged', ARGV[7])
redis.call('SET', uniq, id)
redis.call('HINCRBY', KEYS[2], 'queued', 1)
local keep = tonumber(ARGV[13])
redis.call('ZADD', times, now, id)
redis.call('ZREMRANGEBYSCORE', times, '-inf', now - keep)
redis.call('EXPIRE', times, keep)
redis.call('HINCRBYFLOAT', quota, 'total', ARGV[7])
redis.call('EXPIRE', quota, keep)
mark_seen()
return {'queued', tostring(id)}
"""
)

# Settles or releases a job's quota charge: `seconds` is what it costs in the end.
SETTLE = """
local function settle(key, seconds)
  local v = redis.call('HMGET', key, 'charge_key', 'charged')
  if not v[1] then return end
  local delta = seconds - (tonumber(v[2]) or 0)
  if delta ~= 0 and redis.call('EXISTS', v[1]) == 1 then
    redis.call('HINCRBYFLOAT', v[1], 'total', tostring(delta))
  end
  redis.call('HSET', key, 'charged', tostring(seconds))
end
"""

# True when the job is running under this claim (owner and epoch).
FENCE = """
local function holds(key, owner, epoch)
  local v = redis.call('HMGET', key, 'status', 'lease_owner', 'epoch')
  return v[1] == 'running' and v[2] == owner and v[3] == epoch
end
"""

# Leases are idle times in Redis's own clock, which goes on while Redis is paused or restarting
# and nobody can renew anything: when it answers again every lease would look run out, and a
# live replica's jobs would be taken over (and paid for again). So: when no replica's call has
# reached Redis for `quiet` seconds (they call every second or so while alive), no lease runs
# out until a whole lease after Redis answers again. Returns Redis's time and since when it has
# been answering, in seconds.
ANSWERING = """
local function answering_since(clock, quiet)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local v = redis.call('HMGET', clock, 'last', 'since')
  local since = tonumber(v[2]) or 0
  if v[1] and now - tonumber(v[1]) > quiet then
    since = now
    redis.call('HSET', clock, 'since', tostring(now))
  end
  redis.call('HSET', clock, 'last', tostring(now))
  return now, since
end
"""

# KEYS: ready stream, delayed set, status counts, finished set, failures list. ARGV: prefix,
# group, owner, limit, now, lease in ms, where to go on looking for jobs whose lease ran out
# ("" for not now), attempts allowed, the failure reason for a job past them, failures kept,
# seconds of silence that mean Redis stood still (ANSWERING).
# Returns where that look stopped, then each claimed job's fields (HGETALL), plus "_from" and
# the previous owner when it was taken over. Every claim is an attempt; a job past its
# allowance is failed here (its charge released) and handed back failed, not to be run.
CLAIM = (
    SETTLE
    + ANSWERING
    + """
local p, group, owner = ARGV[1], ARGV[2], ARGV[3]
local limit, now = tonumber(ARGV[4]), ARGV[5]
local stream, delayed, counts = KEYS[1], KEYS[2], KEYS[3]
-- Retries whose delay is over join the stream.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', delayed, id)
  local key = p .. 'job:' .. id
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'entry', redis.call('XADD', stream, '*', 'job', id))
  end
end
local entries = {}
local cursor = ARGV[7]
local clock_now, since = answering_since(p .. 'clock', tonumber(ARGV[11]))
if cursor ~= '' and clock_now - since >= tonumber(ARGV[6]) / 1000 then
  -- Entries whose consumer has not renewed them for a lease: their worker is gone. A long
  -- pending list is walked over several claims, from where the last one stopped.
  for _ = 1, 100 do
    local found = redis.call('XAUTOCLAIM', stream, group, owner, ARGV[6], cursor,
      'COUNT', limit - #entries)
    cursor = found[1]
    for _, e in ipairs(found[2]) do table.insert(entries, e) end
    if cursor == '0-0' or #entries >= limit then break end
  end
end
if #entries < limit then
  local found = redis.call('XREADGROUP', 'GROUP', group, owner, 'COUNT', limit - #entries,
    'STREAMS', stream, '>')
  if found then
    for _, e in ipairs(found[1][2]) do table.insert(entries, e) end
  end
end
local jobs = {cursor}
for _, e in ipairs(entries) do
  local entry, fields = e[1], e[2]
  local id = fields and fields[2]
  local key = p .. 'job:' .. tostring(id)
  local v = redis.call('HMGET', key, 'status', 'entry', 'lease_owner')
  if id and (v[1] == 'queued' or v[1] == 'running') and v[2] == entry then
    if v[1] == 'queued' then
      redis.call('HINCRBY', counts, 'queued', -1)
      redis.call('HINCRBY', counts, 'running', 1)
    end
    -- A new worker: one more attempt, and a new epoch (fencing the previous holder's
    -- writes). The worker that still runs it (its renewals failed a while) keeps its run.
    local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
    if v[3] ~= owner then
      redis.call('HINCRBY', key, 'epoch', 1)
      attempts = redis.call('HINCRBY', key, 'attempts', 1)
    end
    redis.call('HSET', key, 'status', 'running', 'lease_owner', owner)
    if attempts > tonumber(ARGV[8]) then
      redis.call('XACK', stream, group, entry)
      redis.call('XDEL', stream, entry)
      redis.call('HINCRBY', counts, 'running', -1)
      redis.call('HINCRBY', counts, 'failed', 1)
      redis.call('HDEL', key, 'entry', 'lease_owner')
      redis.call('HSET', key, 'status', 'failed', 'error', ARGV[9], 'finished_at', now)
      settle(key, 0)
      redis.call('ZADD', KEYS[4], now, id)
      redis.call('LPUSH', KEYS[5], id)
      redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[10]) - 1)
    end
    local job = redis.call('HGETALL', key)
    if v[1] == 'running' and v[3] and v[3] ~= owner then
      table.insert(job, '_from')
      table.insert(job, v[3])
    end
    table.insert(jobs, job)
  else
    -- Left over: its job finished, was pruned or queued again under a newer entry.
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
  end
end
return jobs
"""
)

# A paid request that is not a job (a translation): the limits as ACCEPT checks them, then a
# place in the per-minute window. ARGV: prefix, subject, now, jobs per minute, the quota's
# ceiling ("" for none), since when jobs count against the per-minute limit, the day's name,
# seconds charges are kept. Returns {'queued'}, {'over_rate', when the request that holds the
# limit was made} or {'over_quota'}.
ACCEPT_REQUEST = (
    OVER_LIMITS
    + """
local p, subject, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local refused = over_limits(p, subject, tonumber(ARGV[4]), ARGV[6], tonumber(ARGV[5]), ARGV[7])
if refused then return refused end
local times = p .. 'limit:' .. subject .. ':jobs'
local keep = tonumber(ARGV[8])
redis.call('ZADD', times, now, 'request:' .. redis.call('INCR', p .. 'request:next'))
redis.call('ZREMRANGEBYSCORE', times, '-inf', now - keep)
redis.call('EXPIRE', times, keep)
return {'queued'}
"""
)

# KEYS: ready stream. ARGV: prefix, group, owner, seconds of silence that mean Redis stood
# still (ANSWERING), job ids... Resets the idle time of the owner's entries (the lease) without
# counting a delivery; never takes another's job. Returns the ids renewed: the others are no
# longer this owner's.
RENEW = (
    ANSWERING
    + """
local p, group, owner = ARGV[1], ARGV[2], ARGV[3]
answering_since(p .. 'clock', tonumber(ARGV[4]))
local held = {}
for i = 5, #ARGV do
  local v = redis.call('HMGET', p .. 'job:' .. ARGV[i], 'status', 'lease_owner', 'entry')
  if v[1] == 'running' and v[2] == owner and v[3] then
    redis.call('XCLAIM', KEYS[1], group, owner, 0, v[3], 'JUSTID')
    table.insert(held, ARGV[i])
  end
end
return held
"""
)

# ARGV: prefix, user, chat, model, audio seconds, input tokens, output tokens, UTC day,
# seconds to keep the by-day aggregates (0: too old to keep), chats kept.
ADD_USAGE = (
    RECORD_USAGE
    + """
record_usage(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  ARGV[10])
return 1
"""
)
