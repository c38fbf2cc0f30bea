"""The shared store for several replicas: Redis (see redis_jobs.py for how its job queue works).

RedisStore is made of its parts: the connection (redis_db.py), the jobs (redis_jobs.py), usage
and statistics (redis_usage.py), and here preferences, updates, one-off claims and the
transcript cache. The Lua scripts are in redis_scripts.py (and redis_scripts_claimed.py).
"""

from __future__ import annotations

import json

from bot.store.base import (
    UPDATE_MEMORY_SECONDS,
    Prefs,
    PrefValue,
    Scope,
    UpdateBeingHandled,
    check_pref_name,
    prefs_from,
)
from bot.store.redis_db import PREFIX, UPDATE_BITS, translated, update_keys, wait
from bot.store.redis_jobs import RedisJobs
from bot.store.redis_usage import RedisUsage

__all__ = ["RedisStore"]


class RedisStore(RedisJobs, RedisUsage):
    """Store on one Redis database, shared by every replica; safe to use from several."""

    @translated
    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs:
        return prefs_from((await wait(self.redis.hgetall(_prefs_key(scope, owner_id)))).items())

    @translated
    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(_prefs_key("chat", chat_id))
        pipe.hgetall(_prefs_key("user", user_id))
        chat, user = await wait(pipe.execute())
        return prefs_from(chat.items()), prefs_from(user.items())

    @translated
    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        check_pref_name(name)
        key = _prefs_key(scope, owner_id)
        if value is None:
            await wait(self.redis.hdel(key, name))
        else:
            await wait(self.redis.hset(key, name, json.dumps(value)))

    # An update is held by the replica handling it (a pending key with a short TTL) and marked
    # seen only once accepted: a replica that dies in between does not leave it marked seen
    # (it would be lost), and its redelivery waits out the hold with 503s.

    @translated
    async def claim_update(self, update_id: int) -> bool:
        claimed = await self._scripts["CLAIM_UPDATE"](
            keys=update_keys(update_id),
            args=[update_id & UPDATE_BITS, self._token, round(self._update_hold * 1000)],
        )
        if claimed == -1:
            raise UpdateBeingHandled(f"update {update_id} is being handled by another replica")
        return bool(claimed)

    @translated
    async def confirm_update(self, update_id: int) -> None:
        """The update is seen; with replicas to wait for (`wait_replicas`), once they have it.

        The last write of an accepted update, just before Telegram gets its 200: a failover
        that lost its job would lose the note for good, as Telegram does not send it again.
        WAIT counts the writes of its own connection, so it goes in one pipeline with this one:
        replication is one ordered stream, and the job written before it is covered too."""
        keys = update_keys(update_id)
        args: list[int | float | str] = [
            update_id & UPDATE_BITS,
            self._token,
            UPDATE_MEMORY_SECONDS,
        ]
        replicas, timeout_ms = self._wait
        if replicas <= 0:
            await self._scripts["CONFIRM_UPDATE"](keys=keys, args=args)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            await self._scripts["CONFIRM_UPDATE"](keys=keys, args=args, client=pipe)
            pipe.wait(replicas, timeout_ms)
            _, acknowledged = await pipe.execute()
        if int(acknowledged) < replicas:
            self._too_few_replicas(int(acknowledged), replicas, timeout_ms)

    @translated
    async def forget_update(self, update_id: int) -> None:
        await self._scripts["FORGET_UPDATE"](keys=update_keys(update_id)[1:], args=[self._token])

    @translated
    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        ms = max(1, round(ttl_seconds * 1000))
        return bool(await self.redis.set(f"{PREFIX}claim:{key}", 1, nx=True, px=ms))

    @translated
    async def release_claim(self, key: str) -> None:
        await self.redis.delete(f"{PREFIX}claim:{key}")

    @translated
    async def get_transcript(self, key: str) -> str | None:
        found = await self.redis.get(f"{PREFIX}transcript:{key}")
        return None if found is None else str(found)

    @translated
    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None:
        if ttl_seconds > 0:
            ms = max(1, round(ttl_seconds * 1000))
            await self.redis.set(f"{PREFIX}transcript:{key}", text, px=ms)


def _prefs_key(scope: Scope, owner_id: int) -> str:
    return f"{PREFIX}prefs:{scope}:{owner_id}"
