"""The Lua scripts for a claimed job (see redis_scripts.py for the conventions): its fenced
writes and its end (finish, retry), jobs given back at shutdown, and pruning."""

from __future__ import annotations

from bot.store.redis_scripts import FENCE, RECORD_USAGE, SETTLE

# KEYS: ready stream, delayed set, status counts, finished set, failures list.
# ARGV: prefix, group, id, "done" or "failed", now, audio seconds ("" for none), reply ids
# (JSON), error, UTC day of now, seconds to keep usage by day, chats kept, failures kept,
# owner, epoch. Returns -1 (nothing written) when that claim is over.
FINISH = (
    RECORD_USAGE
    + SETTLE
    + FENCE
    + """
local p, group, id, status, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = p .. 'job:' .. id
if not holds(key, ARGV[13], ARGV[14]) then return -1 end
local v = redis.call('HMGET', key, 'status', 'entry', 'user_id', 'chat_id', 'model', 'charged')
if v[2] then
  redis.call('XACK', KEYS[1], group, v[2])
  redis.call('XDEL', KEYS[1], v[2])
end
redis.call('ZREM', KEYS[2], id)
local was = v[1]
if was ~= status then
  redis.call('HINCRBY', KEYS[3], was, -1)
  redis.call('HINCRBY', KEYS[3], status, 1)
end
redis.call('HDEL', key, 'entry', 'lease_owner')
redis.call('HSET', key, 'status', status, 'finished_at', now)
redis.call('ZADD', KEYS[4], now, id)
if status == 'done' then
  local audio = ARGV[6]
  redis.call('HSET', key, 'reply_ids', ARGV[7])
  redis.call('HDEL', key, 'error')
  if audio == '' then
    redis.call('HDEL', key, 'audio_seconds')
  else
    redis.call('HSET', key, 'audio_seconds', audio)
    settle(key, tonumber(audio))
    if was ~= 'done' and tonumber(audio) > 0 then
      record_usage(p, v[3], v[4], v[5], audio, 0, 0, ARGV[9], ARGV[10], ARGV[11])
    end
  end
else
  redis.call('HSET', key, 'error', ARGV[8])
  settle(key, 0)
  if was ~= 'failed' then
    redis.call('LPUSH', KEYS[5], id)
    redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[12]) - 1)
  end
end
return 1
"""
)

# KEYS: ready stream, delayed set, status counts. ARGV: prefix, group, id, reason, now, delay,
# owner, epoch. Returns -1 (nothing written) when that claim is over.
RETRY = (
    FENCE
    + """
local p, group, id = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'job:' .. id
if not holds(key, ARGV[7], ARGV[8]) then return -1 end
local v = redis.call('HMGET', key, 'status', 'entry')
if v[2] then
  redis.call('XACK', KEYS[1], group, v[2])
  redis.call('XDEL', KEYS[1], v[2])
end
if v[1] ~= 'queued' then
  redis.call('HINCRBY', KEYS[3], v[1], -1)
  redis.call('HINCRBY', KEYS[3], 'queued', 1)
end
local due = tonumber(ARGV[5]) + tonumber(ARGV[6])
redis.call('HDEL', key, 'entry', 'lease_owner')
redis.call('HSET', key, 'status', 'queued', 'error', ARGV[4], 'not_before', tostring(due))
if tonumber(ARGV[6]) <= 0 then
  redis.call('ZREM', KEYS[2], id)
  redis.call('HSET', key, 'entry', redis.call('XADD', KEYS[1], '*', 'job', id))
else
  redis.call('ZADD', KEYS[2], due, id)
end
return 1
"""
)

# KEYS: ready stream, status counts. ARGV: prefix, group, owner. Shutdown: every entry this
# consumer holds goes back to the end of the stream (attempts - 1: not the job's fault), then
# the consumer is removed from the group.
RELEASE = """
local p, group, owner = ARGV[1], ARGV[2], ARGV[3]
local stream = KEYS[1]
local released = 0
for _, pending in ipairs(redis.call('XPENDING', stream, group, '-', '+', 100000, owner)) do
  local entry = pending[1]
  local found = redis.call('XRANGE', stream, entry, entry)
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  local id = found[1] and found[1][2][2]
  if id then
    local key = p .. 'job:' .. id
    local v = redis.call('HMGET', key, 'status', 'lease_owner', 'entry', 'attempts')
    if v[1] == 'running' and v[2] == owner and v[3] == entry then
      redis.call('HINCRBY', KEYS[2], 'running', -1)
      redis.call('HINCRBY', KEYS[2], 'queued', 1)
      redis.call('HDEL', key, 'lease_owner')
      redis.call('HSET', key, 'status', 'queued',
        'attempts', math.max(tonumber(v[4] or '1') - 1, 0),
        'entry', redis.call('XADD', stream, '*', 'job', id))
      released = released + 1
    end
  end
end
redis.call('XGROUP', 'DELCONSUMER', stream, group, owner)
return released
"""

# KEYS: finished set, status counts. ARGV: prefix, cutoff, how many at most.
PRUNE = """
local p = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local pruned = 0
for _, id in ipairs(ids) do
  local key = p .. 'job:' .. id
  local v = redis.call('HMGET', key, 'status', 'chat_id', 'message_id', 'model')
  if v[1] == 'done' or v[1] == 'failed' then
    redis.call('HINCRBY', KEYS[2], v[1], -1)
    local uniq = p .. 'job:uniq:' .. v[2] .. ':' .. v[3] .. ':' .. v[4]
    if redis.call('GET', uniq) == id then redis.call('DEL', uniq) end
    redis.call('DEL', key)
    pruned = pruned + 1
  end
  redis.call('ZREM', KEYS[1], id)
end
return {#ids, pruned}
"""

# KEYS: ready stream. ARGV: group, idle ms. Consumers of replicas that are gone (nothing
# pending, silent for that long) are removed; checked and removed in one step, so a consumer
# that takes a job meanwhile is never removed with it.
FORGET_CONSUMERS = """
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""

# ARGV: prefix, id, owner, epoch, then field/value pairs. Sets them only under that claim;
# returns -1 (nothing written) when it is over.
FENCED_SET = (
    FENCE
    + """
local key = ARGV[1] .. 'job:' .. ARGV[2]
if not holds(key, ARGV[3], ARGV[4]) then return -1 end
redis.call('HSET', key, unpack(ARGV, 5))
return 1
"""
)
