"""The posts stream's producer side: idempotent enqueue by (channel id, message id, version).

Every source (live watcher, reconciler, `vigil ingest`) goes through `PostQueue.enqueue`, so a
post reaches triage once however many times it is seen. The check and the XADD happen in one Lua
script: no window in which a crash leaves the post marked seen but not enqueued.

Bounded by age: what was enqueued is recorded in one hash per channel and UTC day of arrival
(`keys.post_seen_day`), each expiring after the window (`seen_days`, default 2: today's and
yesterday's are checked). A post seen again after the window (re-ingesting an old export) is
enqueued again; triage's alert ledger (`keys.alerts_made`, kept for the ledger window) still
gives no analyst a second alert for it, and a post older than the backfill cutoff is archived,
not alerted. The clock is a parameter so a benchmark can run days through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN

DAY_S = 86400
SEEN_DAYS = 2

# KEYS[1] the posts stream, then `ARGV[2]` seen hashes per post (today's first).
# ARGV[1] maxlen, ARGV[2] days per post, ARGV[3] ttl, then (message id, version, payload) per
# post. Returns 1/0 per post.
_ENQUEUE_MANY = """
local days = tonumber(ARGV[2])
local out = {}
local posts = (#KEYS - 1) / days
for p = 0, posts - 1 do
  local j = p * 3 + 4
  local seen = false
  for d = 1, days do
    local cur = redis.call('HGET', KEYS[1 + p * days + d], ARGV[j])
    if cur and tonumber(cur) >= tonumber(ARGV[j + 1]) then seen = true break end
  end
  if seen then
    out[#out + 1] = 0
  else
    local today = KEYS[2 + p * days]
    redis.call('HSET', today, ARGV[j], ARGV[j + 1])
    redis.call('EXPIRE', today, ARGV[3])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'post', ARGV[j + 2])
    out[#out + 1] = 1
  end
end
return out
"""
MAX_BATCH = 500  # one script call blocks Redis for its length: keep it to milliseconds


class PostQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        seen_days: int = SEEN_DAYS,
        clock: Callable[[], float] = time.time,
        day_s: int = DAY_S,
    ) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self.seen_days = max(1, seen_days)
        self._clock = clock
        self.day_s = day_s  # a bucket's span; shorter only to compress time (bench/retention.py)
        self._many: Any = redis.register_script(_ENQUEUE_MANY)

    def _buckets(self, channel_id: int, today: int) -> list[str]:
        return [keys.post_seen_day(channel_id, today - d) for d in range(self.seen_days)]

    def _today(self) -> int:
        return int(self._clock() // self.day_s)

    async def enqueue(self, post: Post) -> bool:
        """True if the post was new (or a newer version) and is now on the stream."""
        added, _dups = await self.enqueue_many([post])
        return added == 1

    async def enqueue_many(self, posts: Iterable[Post]) -> tuple[int, int]:
        """Enqueue a batch with one script call per MAX_BATCH posts, each post checked
        exactly as `enqueue` does. Returns (enqueued, duplicates)."""
        batch = list(posts)
        added = 0
        today = self._today()
        # A bucket lives its own day plus the window after it, so each check finds it.
        ttl = (self.seen_days + 1) * self.day_s
        for start in range(0, len(batch), MAX_BATCH):
            chunk = batch[start : start + MAX_BATCH]
            args: list[Any] = [self._maxlen, self.seen_days, ttl]
            seen: list[str] = []
            for post in chunk:
                args += [post.message_id, post.version, post.to_json()]
                seen += self._buckets(post.channel_id, today)
            results = await self._many(keys=[keys.POSTS_STREAM, *seen], args=args)
            added += sum(int(r) for r in results)
        return added, len(batch) - added

    async def seen_versions(self, channel_id: int, message_ids: Sequence[int]) -> list[int | None]:
        """The highest version enqueued within the window of each message (None: not seen)."""
        if not message_ids:
            return []
        fields: list[Any] = [str(m) for m in message_ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._buckets(channel_id, self._today()):
                pipe.hmget(bucket, fields)
            rows: list[Any] = await pipe.execute()
        out: list[int | None] = []
        for i in range(len(message_ids)):
            found = [int(row[i]) for row in rows if row[i] is not None]
            out.append(max(found) if found else None)
        return out

    async def last_seen_id(self, channel_id: int) -> int:
        """Highest message id enqueued for a channel within the window (0 if none)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._buckets(channel_id, self._today()):
                pipe.hkeys(bucket)
            rows: list[Any] = await pipe.execute()
        return max((int(i) for row in rows for i in row), default=0)

    async def drop_legacy_seen(self) -> int:
        """Delete the seen hashes of before the day buckets (`vigil:{posts}:seen:<channel>`,
        never expiring). Every start asks; only the first scans the keyspace (a marker records
        that it was done, as no code writes those hashes any more). Returns how many went."""
        if await self._redis.exists(keys.LEGACY_SEEN_DROPPED):
            return 0
        prefix = keys.post_seen(0)[: -len("0")]
        legacy: list[str] = []
        async for key in self._redis.scan_iter(match=f"{prefix}*", count=1000):
            if ":" not in str(key)[len(prefix) :]:
                legacy.append(str(key))
        for i in range(0, len(legacy), 500):
            await self._redis.unlink(*legacy[i : i + 500])
        await self._redis.set(keys.LEGACY_SEEN_DROPPED, "1")
        return len(legacy)
