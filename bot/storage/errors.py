"""Errors the bot's handlers raised, counted per handler (shown in the admin System view).

Key: `keys.HANDLER_ERRORS`, a hash handler name -> count since the counters were last reset.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.storage import keys


class HandlerErrors:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def count(self, handler: str) -> bool:
        """Count one error; False when Redis refused (the error boundary still answers)."""
        try:
            await self._redis.hincrby(keys.HANDLER_ERRORS, handler[:80], 1)
        except RedisError:
            return False
        return True

    async def counts(self) -> dict[str, int]:
        raw: Any = await self._redis.hgetall(keys.HANDLER_ERRORS)
        return {str(k): int(v) for k, v in sorted(raw.items())}
