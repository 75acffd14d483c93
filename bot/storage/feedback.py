"""Analyst feedback on alerts (👍 relevant / 👎 noise), for the learned relevance model.

Key: `keys.feedback(analyst)`, a hash '<channel>:<message>:<watch>' -> 'relevant' | 'noise'.
"""

from __future__ import annotations

from typing import Any, Literal

import redis.asyncio as aioredis

from bot.storage import keys

Verdict = Literal["relevant", "noise"]


def _field(channel_id: int, message_id: int, watch_id: int) -> str:
    return f"{channel_id}:{message_id}:{watch_id}"


class FeedbackRepository:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def set(
        self, analyst_id: int, channel_id: int, message_id: int, watch_id: int, verdict: Verdict
    ) -> None:
        await self._redis.hset(
            keys.feedback(analyst_id), _field(channel_id, message_id, watch_id), verdict
        )

    async def get(
        self, analyst_id: int, channel_id: int, message_id: int, watch_id: int
    ) -> str | None:
        value: Any = await self._redis.hget(
            keys.feedback(analyst_id), _field(channel_id, message_id, watch_id)
        )
        return str(value) if value is not None else None

    async def all_for(self, analyst_id: int) -> dict[tuple[int, int, int], str]:
        raw: Any = await self._redis.hgetall(keys.feedback(analyst_id))
        out: dict[tuple[int, int, int], str] = {}
        for key, verdict in raw.items():
            parts = key.split(":")
            if len(parts) == 3:
                out[(int(parts[0]), int(parts[1]), int(parts[2]))] = verdict
        return out
