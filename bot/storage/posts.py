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


# The same check for a whole batch in one call: KEYS[1] the stream, KEYS[2..] the seen hashes;
# ARGV[1] maxlen, then (message id, version, payload) per post. Returns 1/0 per post.
_ENQUEUE_MANY = """
local out = {}
for i = 2, #KEYS do
  local j = (i - 2) * 3 + 2
  local cur = redis.call('HGET', KEYS[i], ARGV[j])
  if cur and tonumber(cur) >= tonumber(ARGV[j + 1]) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[i], ARGV[j], ARGV[j + 1])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'post', ARGV[j + 2])
    out[#out + 1] = 1
  end
end
return out
"""
MAX_BATCH = 500  # one script call blocks Redis for its length: keep it to milliseconds


class PostQueue:
    def __init__(self, redis: aioredis.Redis, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._script: Any = redis.register_script(_ENQUEUE)
        self._many: Any = redis.register_script(_ENQUEUE_MANY)

    async def enqueue(self, post: Post) -> bool:
        """True if the post was new (or a newer version) and is now on the stream."""
        added = await self._script(
            keys=[keys.post_seen(post.channel_id), keys.POSTS_STREAM],
            args=[post.message_id, post.version, self._maxlen, post.to_json()],
        )
        return bool(added)

    async def enqueue_many(self, posts: Iterable[Post]) -> tuple[int, int]:
        """Enqueue a batch with one script call per MAX_BATCH posts, each post checked
        exactly as `enqueue` does. Returns (enqueued, duplicates)."""
        batch = list(posts)
        added = 0
        for start in range(0, len(batch), MAX_BATCH):
            chunk = batch[start : start + MAX_BATCH]
            args: list[Any] = [self._maxlen]
            for post in chunk:
                args += [post.message_id, post.version, post.to_json()]
            results = await self._many(
                keys=[keys.POSTS_STREAM, *(keys.post_seen(p.channel_id) for p in chunk)],
                args=args,
            )
            added += sum(int(r) for r in results)
        return added, len(batch) - added

    async def last_seen_id(self, channel_id: int) -> int:
        """Highest message id ever enqueued for a channel (0 if none)."""
        ids: Any = await self._redis.hkeys(keys.post_seen(channel_id))
        return max((int(i) for i in ids), default=0)
