"""The flood windows in Redis: every replica of the bot counts against the same limits.

Each window is a sorted set of message ids scored by Redis's own clock (TIME inside the
script), so replicas on machines whose clocks differ still agree. Reserving checks every
window a message counts in and adds it to all of them in one script: two replicas can never
both take the last place.
"""

from __future__ import annotations

from typing import Any

from bot.flood.windows import (
    ANSWER_POLL_SECONDS,
    IN_FLIGHT_SECONDS,
    FloodLimits,
    Ticket,
    overall_spare,
)
from bot.redis_client import connect

_PREFIX = "transcribot:flood:"

# KEYS: overall, chat, pause:all, pause:chat, serial.
# ARGV: overall count, ms; chat count, ms; group count, ms; has chat; is group; spare;
# in-flight ms (a message not answered yet is scored this far ahead); answer poll ms;
# overall spare.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local everyone = math.max(redis.call('PTTL', KEYS[3]), 0)
local own = 0
if ARGV[7] == '1' then own = math.max(own, redis.call('PTTL', KEYS[4])) end
local function need(key, count, ms, horizon, spare)
  count = tonumber(count)
  ms = tonumber(ms)
  if count <= 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - horizon)
  local allowed = count - spare
  if allowed <= 0 then return ms end
  local inside = redis.call('ZCOUNT', key, '(' .. (now - ms), '+inf')
  if inside < allowed then return 0 end
  local at = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. (now - ms), 'WITHSCORES',
                        'LIMIT', allowed - 1, 1)
  at = tonumber(at[2])
  if at > now then return math.min(ms, tonumber(ARGV[11])) end
  return at + ms - now
end
local spared = tonumber(ARGV[12])
everyone = math.max(everyone, need(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[2]), spared))
local horizon = math.max(tonumber(ARGV[4]), tonumber(ARGV[6]))
if ARGV[7] == '1' then
  local spare = tonumber(ARGV[9])
  own = math.max(own, need(KEYS[2], ARGV[3], ARGV[4], horizon, spare))
  if ARGV[8] == '1' then own = math.max(own, need(KEYS[2], ARGV[5], ARGV[6], horizon, spare)) end
end
if everyone > 0 or own > 0 then
  return {math.ceil(math.max(everyone, own)), '', everyone >= own and 1 or 0}
end
local id = tostring(redis.call('INCR', KEYS[5]))
local flight = tonumber(ARGV[10])
redis.call('ZADD', KEYS[1], now + flight, id)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), 1) + flight + 1000)
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[2], now + flight, id)
  redis.call('PEXPIRE', KEYS[2], horizon + flight + 1000)
end
return {0, id}
"""

# KEYS: overall, chat. ARGV: id, has chat.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
if ARGV[2] == '1' then redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1]) end
return 1
"""

# KEYS: pause:all, pause:chat, last refusal. ARGV: ms, chat ('' for none).
_PAUSE = """
local ms = tonumber(ARGV[1])
local function longer(key)
  if redis.call('PTTL', key) < ms then redis.call('SET', key, '1', 'PX', ms) end
end
local last = redis.call('GET', KEYS[3])
if ARGV[2] == '' or (last and last ~= ARGV[2]) then longer(KEYS[1]) end
if ARGV[2] ~= '' then longer(KEYS[2]) end
redis.call('SET', KEYS[3], ARGV[2], 'PX', 1000)
return 1
"""


class RedisWindows:
    """The windows every replica shares, on the Redis of DATABASE_URL."""

    def __init__(self, url: str, limits: FloodLimits) -> None:
        self._limits = limits
        self._redis = connect(url, max_connections=32)  # a reserve run twice only wastes a place
        self._reserve = self._redis.register_script(_RESERVE)
        self._release = self._redis.register_script(_RELEASE)
        self._pause = self._redis.register_script(_PAUSE)

    async def reserve(self, chat: int | None, spare: int = 0) -> Ticket:
        limits = self._limits
        args: list[Any] = [
            limits.overall.count,
            _ms(limits.overall.seconds),
            limits.chat.count,
            _ms(limits.chat.seconds),
            limits.group.count,
            _ms(limits.group.seconds),
            "0" if chat is None else "1",
            "1" if chat is not None and chat < 0 else "0",
            spare,
            _ms(IN_FLIGHT_SECONDS),
            _ms(ANSWER_POLL_SECONDS),
            overall_spare(limits.overall, spare),
        ]
        keys = [_key("all"), _chat_key(chat), _key("pause:all"), _pause_key(chat), _key("id")]
        wait_ms, ticket, *overall = await self._reserve(keys=keys, args=args)
        if int(wait_ms) > 0:
            return Ticket(int(wait_ms) / 1000, overall=bool(overall and int(overall[0])))
        return Ticket(0.0, str(ticket))

    async def release(self, chat: int | None, ticket: Ticket) -> None:
        keys = [_key("all"), _chat_key(chat)]
        await self._release(keys=keys, args=[ticket.key, "0" if chat is None else "1"])

    async def pause(self, chat: int | None, seconds: float) -> None:
        keys = [_key("pause:all"), _pause_key(chat), _key("refused")]
        await self._pause(keys=keys, args=[_ms(seconds), "" if chat is None else str(chat)])

    async def close(self) -> None:
        await self._redis.aclose()


def _key(name: str) -> str:
    return _PREFIX + name


def _chat_key(chat: int | None) -> str:
    return _key(f"chat:{chat if chat is not None else 'none'}")


def _pause_key(chat: int | None) -> str:
    return _key(f"pause:{chat if chat is not None else 'none'}")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
