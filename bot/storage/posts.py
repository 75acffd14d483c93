"""The posts stream's producer side: idempotent enqueue by (channel id, message id, version).

Every source (live watcher, reconciler, `vigil ingest`) goes through `PostQueue.enqueue`, so a
post reaches triage once however many times it is seen. The check and the XADD happen in one Lua
script: no window in which a crash leaves the post marked seen but not enqueued.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN

# KEYS[1] seen hash of the channel, KEYS[2] posts stream
# ARGV[1] message id, ARGV[2] version, ARGV[3] maxlen, ARGV[4] payload
_ENQUEUE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'post', ARGV[4])
return 1
"""


class PostQueue:
    def __init__(self, redis: aioredis.Redis, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._script: Any = redis.register_script(_ENQUEUE)

    async def enqueue(self, post: Post) -> bool:
        """True if the post was new (or a newer version) and is now on the stream."""
        added = await self._script(
            keys=[keys.post_seen(post.channel_id), keys.POSTS_STREAM],
            args=[post.message_id, post.version, self._maxlen, post.to_json()],
        )
        return bool(added)

    async def enqueue_many(self, posts: Iterable[Post]) -> tuple[int, int]:
        """Enqueue in one pipeline round trip. Returns (enqueued, duplicates)."""
        batch = list(posts)
        if not batch:
            return 0, 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for post in batch:
                await self._script(
                    keys=[keys.post_seen(post.channel_id), keys.POSTS_STREAM],
                    args=[post.message_id, post.version, self._maxlen, post.to_json()],
                    client=pipe,
                )
            results = await pipe.execute()
        added = sum(1 for r in results if r)
        return added, len(batch) - added

    async def last_seen_id(self, channel_id: int) -> int:
        """Highest message id ever enqueued for a channel (0 if none)."""
        ids: Any = await self._redis.hkeys(keys.post_seen(channel_id))
        return max((int(i) for i in ids), default=0)
