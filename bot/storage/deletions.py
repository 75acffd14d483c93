"""Which alerted posts the reconciler should look for again (deletions while down).

Telegram sends a channel's deletions only to a connected client and never replays them: a post
deleted while the watcher was down is never announced. The reconciler asks Telegram again for
the posts analysts were alerted on in the last days; this repository says which those are, from
the archive's per-channel index (post date) and the alert ledger (`keys.alerts_made`), leaving
out posts already known deleted. One round trip for the index and the ledger, one MGET for the
archived versions, whatever the window holds; at most `limit` posts, the newest.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.archive import _parse

SCAN_LIMIT = 5_000  # archive entries of one channel read per check (the newest)


class AlertedPosts:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def since(
        self, channel_id: int, since: float, *, limit: int = 500, scan: int = SCAN_LIMIT
    ) -> list[int]:
        """Message ids of `channel_id`'s posts dated after `since` that someone was alerted on
        and that are not known deleted: newest first, at most `limit`."""
        ids: Any = await self._redis.zrevrangebyscore(
            keys.archive_index(channel_id), "+inf", since, start=0, num=scan
        )
        candidates = [int(i) for i in ids]
        if not candidates:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in candidates:
                pipe.exists(keys.alerts_made(channel_id, message_id))
            made: list[Any] = await pipe.execute()
        alerted = [m for m, n in zip(candidates, made, strict=True) if int(n)][: limit * 2]
        if not alerted:
            return []
        raw: Any = await self._redis.mget([keys.archive_post(channel_id, m) for m in alerted])
        out: list[int] = []
        for message_id, r in zip(alerted, raw, strict=True):
            post = _parse(r, (channel_id, message_id))
            if post is not None and post.event != "delete":
                out.append(message_id)
        return out[:limit]
