"""What the watcher keeps per Telegram session and per channel besides the channel registry:
the session lock (one process per session file), the join pace of each account, and the
reconciler's checkpoint per channel.

Keys: `keys.session_lock(session)` a token with a PX lease; `keys.joiner_state(session)` hash
last_at, day, count, blocked_until (one per account: bounded by the sessions); and
`keys.channel_checkpoint(channel)` the highest message id known to be on the posts stream (one
per channel).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Only move forward: the reconciler of another account may have gone further.
_ADVANCE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class SessionLocks:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._refresh: Any = redis.register_script(_REFRESH)
        self._release: Any = redis.register_script(_RELEASE)

    async def acquire(self, session: str, token: str, ttl_ms: int) -> str | None:
        """None if `token` now holds the lease; else the current holder's token."""
        key = keys.session_lock(session)
        if await self._redis.set(key, token, nx=True, px=ttl_ms):
            return None
        current: Any = await self._redis.get(key)
        return str(current) if current else ""

    async def refresh(self, session: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._refresh(keys=[keys.session_lock(session)], args=[token, ttl_ms]))

    async def release(self, session: str, token: str) -> None:
        await self._release(keys=[keys.session_lock(session)], args=[token])


class JoinPace:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def get(self, session: str) -> dict[str, str]:
        state: Any = await self._redis.hgetall(keys.joiner_state(session))
        return {str(k): str(v) for k, v in state.items()}

    async def update(self, session: str, **fields: str) -> None:
        mapping: dict[Any, Any] = dict(fields)
        await self._redis.hset(keys.joiner_state(session), mapping=mapping)


class Checkpoints:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._advance: Any = redis.register_script(_ADVANCE)

    async def get(self, channel_id: int) -> int | None:
        raw: Any = await self._redis.get(keys.channel_checkpoint(channel_id))
        return int(raw) if raw is not None else None

    async def advance(self, channel_id: int, message_id: int) -> bool:
        """Move forward only (another account's reconciler may have gone further)."""
        moved = await self._advance(keys=[keys.channel_checkpoint(channel_id)], args=[message_id])
        return bool(moved)
