"""The archive: posts kept for `/test`, digests, follow-ups and "also in" edits.

Keys: `keys.archive_post` (the post's JSON, expiring after the archive window), one sorted set
per channel `keys.archive_index` (message id -> post date) for time-ranged scans, one
`keys.archive_arrivals` (message id -> when archived: the window counts from this), and the set of
channels that have an archive. Every read and write takes a whole batch in one round trip.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.models import Post, PostFormatError
from bot.storage import keys

log = logging.getLogger(__name__)

PostKey = tuple[int, int]  # (channel id, message id)
TRIM_CHUNK = 5_000  # index entries one trim call removes per channel (the script blocks Redis)

# Per post, KEYS: its key, its channel's index, its channel's arrivals; ARGV[1] ttl, ARGV[2]
# now, then per post: JSON, date, message id.
_PUT = """
local ttl, now = ARGV[1], ARGV[2]
for i = 0, #KEYS / 3 - 1 do
  local a = 3 + i * 3
  redis.call('SET', KEYS[i * 3 + 1], ARGV[a], 'EX', ttl)
  redis.call('ZADD', KEYS[i * 3 + 2], ARGV[a + 1], ARGV[a + 2])
  redis.call('ZADD', KEYS[i * 3 + 3], now, ARGV[a + 2])
end
return #KEYS / 3
"""

# KEYS[1] a channel's index (by post date), KEYS[2] its arrivals (by archive time); ARGV[1] the
# cutoff, ARGV[2] the chunk. Entries that arrived before the cutoff leave both. A channel with
# no arrivals set (archived before arrivals were kept) is trimmed by post date, as it was.
_TRIM = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #old == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(old))
redis.call('ZREM', KEYS[2], unpack(old))
return #old
"""


class ArchiveRepository:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = 30 * 86400) -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self._known: set[int] = set()  # channels this process has put in ARCHIVE_CHANNELS

    async def get_many(self, ids: Sequence[PostKey]) -> dict[PostKey, Post]:
        """The archived posts among `ids` (one MGET); unreadable ones are left out."""
        if not ids:
            return {}
        raw: Any = await self._redis.mget([keys.archive_post(c, m) for c, m in ids])
        return {key: post for key, r in zip(ids, raw, strict=True) if (post := _parse(r, key))}

    async def get(self, channel_id: int, message_id: int) -> Post | None:
        return (await self.get_many([(channel_id, message_id)])).get((channel_id, message_id))

    def put_commands(self, pipe: Any, posts: Iterable[Post], *, now: float | None = None) -> None:
        """Queue the writes that archive `posts` on a caller's pipeline (so a worker can
        archive and record in the same round trip). The window counts from when a post was
        archived, not from its date, so a backfill of old posts can be searched for the whole
        window: the post expires then, and `trim` drops its index entry by its arrival."""
        arrived = now if now is not None else time.time()
        batch = list(posts)
        if not batch:
            return
        # One script call for the batch: three commands a post queued one by one cost the
        # worker more (client-side encoding) than Redis takes to run them.
        names: list[str] = []
        args: list[Any] = [self.ttl_s, arrived]
        for post in batch:
            names += [
                keys.archive_post(post.channel_id, post.message_id),
                keys.archive_index(post.channel_id),
                keys.archive_arrivals(post.channel_id),
            ]
            args += [post.to_json(), post.date.timestamp(), post.message_id]
        pipe.eval(_PUT, len(names), *names, *args)
        for post in batch:
            if post.channel_id not in self._known:
                self._known.add(post.channel_id)
                pipe.sadd(keys.ARCHIVE_CHANNELS, str(post.channel_id))

    async def trim(self, *, now: float | None = None) -> int:
        """Drop index entries dated before the window (their posts have expired). Returns
        how many."""
        cutoff = (now if now is not None else time.time()) - self.ttl_s
        channel_ids: Any = await self._redis.smembers(keys.ARCHIVE_CHANNELS)
        if not channel_ids:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel_id in channel_ids:
                channel = int(channel_id)
                # EVAL, not a registered script: those cannot be queued on an asyncio
                # pipeline, and this runs once a minute.
                pipe.eval(
                    _TRIM,
                    2,
                    keys.archive_index(channel),
                    keys.archive_arrivals(channel),
                    cutoff,
                    TRIM_CHUNK,
                )
            removed: list[Any] = await pipe.execute()
        return sum(int(r) for r in removed)

    async def put_many(self, posts: Iterable[Post]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            self.put_commands(pipe, posts)
            await pipe.execute()

    async def sample(self, since: float, limit: int) -> tuple[list[Post], int]:
        """About `limit` archived posts dated after `since`, spread evenly over the channels
        (the newest of each), and how many posts the window holds in all: the desk model's
        background and calibration sample, and the volume to scale it by."""
        channel_ids: Any = await self._redis.smembers(keys.ARCHIVE_CHANNELS)
        channels = sorted(int(c) for c in channel_ids)
        if not channels or limit <= 0:
            return [], 0
        per_channel = max(1, limit // len(channels))
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel_id in channels:
                pipe.zcount(keys.archive_index(channel_id), since, "+inf")
                pipe.zrevrangebyscore(
                    keys.archive_index(channel_id), "+inf", since, start=0, num=per_channel
                )
            replies: list[Any] = await pipe.execute()
        total = sum(int(n) for n in replies[0::2])
        wanted = [(c, int(i)) for c, ids in zip(channels, replies[1::2], strict=True) for i in ids]
        found = await self.get_many(wanted[: limit * 2])
        return [found[k] for k in wanted if k in found], total

    async def newest(
        self,
        since: float,
        before: float = math.inf,
        *,
        chunk: int = 500,
        per_channel: int = 100,
    ) -> AsyncIterator[list[Post]]:
        """Every archived post dated in [since, before], newest first across all channels, in
        lists of up to `chunk` posts (one MGET each). Each channel's index is read
        `per_channel` entries at a time (all channels due in one pipeline) and merged, so
        memory stays bounded whatever the window holds."""
        channel_ids: Any = await self._redis.smembers(keys.ARCHIVE_CHANNELS)
        channels = sorted(int(c) for c in channel_ids)
        buffers: dict[int, deque[tuple[float, int]]] = {c: deque() for c in channels}
        offsets = dict.fromkeys(channels, 0)
        open_channels = set(channels)
        heap: list[tuple[float, int, int]] = []  # (-date, channel id, message id)
        due = list(channels)
        out: list[PostKey] = []
        top = "+inf" if math.isinf(before) else repr(before)
        while True:
            if due:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for c in due:
                        pipe.zrevrangebyscore(
                            keys.archive_index(c),
                            top,
                            since,
                            start=offsets[c],
                            num=per_channel,
                            withscores=True,
                        )
                    rows: list[Any] = await pipe.execute()
                for c, found in zip(due, rows, strict=True):
                    offsets[c] += len(found)
                    if len(found) < per_channel:
                        open_channels.discard(c)
                    buffers[c].extend((float(score), int(m)) for m, score in found)
                    if buffers[c]:
                        date, message_id = buffers[c].popleft()
                        heapq.heappush(heap, (-date, c, message_id))
                due = []
            if not heap:
                break
            _date, c, message_id = heapq.heappop(heap)
            out.append((c, message_id))
            if buffers[c]:
                date, nxt = buffers[c].popleft()
                heapq.heappush(heap, (-date, c, nxt))
            elif c in open_channels:
                due.append(c)  # its next entry may be newer than the other heads
            if len(out) >= chunk:
                found_posts = await self.get_many(out)
                yield [found_posts[k] for k in out if k in found_posts]
                out = []
        if out:
            found_posts = await self.get_many(out)
            yield [found_posts[k] for k in out if k in found_posts]


def _parse(raw: Any, key: PostKey) -> Post | None:
    if not raw:
        return None
    try:
        return Post.from_json(str(raw))
    except PostFormatError:
        log.warning("archive: unreadable post %s:%s", *key)
        return None
