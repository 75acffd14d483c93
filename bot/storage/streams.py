"""Redis Streams with consumer groups: the only queue mechanism in Vigil.

A consumer reads, in this order: its own pending entries (delivered before a crash and never
acknowledged), entries that another consumer left idle longer than `claim_idle_ms` (XAUTOCLAIM:
that consumer died), then new entries. Own pending entries are read back a few at a time, so a
crash loop counts a delivery only against the entries it was handling. Work is acknowledged
only after it is durable. An entry delivered more than `max_deliveries` times is moved to the
dead-letter stream, so one poison entry cannot block a group forever. Streams are capped with an
approximate MAXLEN far above any expected backlog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.storage.connection import outages

log = logging.getLogger(__name__)

DEFAULT_MAXLEN = 1_000_000
# Own pending entries read per batch after a restart (see `StreamConsumer.read`).
RECOVERY_READ = 10
LAG_COUNT_CAP = 10_001  # status reports 'over 10000' rather than scanning a huge backlog


@dataclass(frozen=True, slots=True)
class StreamEntry:
    id: str
    fields: dict[str, str]
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class StreamStats:
    stream: str
    group: str
    length: int
    pending: int
    lag: int | None
    consumers: int
    dead_letters: int


async def append(
    redis: aioredis.Redis,
    stream: str,
    fields: Mapping[str, str | int | float],
    *,
    maxlen: int = DEFAULT_MAXLEN,
) -> str:
    """XADD with an approximate cap. Returns the entry id."""
    payload: dict[Any, Any] = dict(fields)
    entry_id = await redis.xadd(stream, payload, maxlen=maxlen, approximate=True)
    return str(entry_id)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the group (and the stream) if missing; starting at 0 so nothing is skipped."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class StreamConsumer:
    redis: aioredis.Redis
    stream: str
    group: str
    consumer: str
    dead_letter_stream: str
    max_deliveries: int = 5
    claim_idle_ms: int = 60_000
    dead_maxlen: int = 100_000
    _backlog_done: bool = field(default=False, init=False)
    _claim_cursor: str = field(default="0-0", init=False)
    _last_claim: float = field(default=0.0, init=False)
    _outages: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._outages = outages(self.redis)

    async def ensure_group(self) -> None:
        await ensure_group(self.redis, self.stream, self.group)

    async def read(self, count: int = 100, block_ms: int | None = 1000) -> list[StreamEntry]:
        """The next batch: own pending first, then reclaimed, then new entries."""
        if self._outages != (seen := outages(self.redis)):  # a reply may have been lost
            self._outages = seen
            self._backlog_done = False  # so look at our own pending entries again
        while not self._backlog_done:
            # A few at a time: each read of an own pending entry counts as a delivery, so a
            # restart that reads them all at once would count the whole backlog against
            # `max_deliveries` although it dies (in a crash loop) while handling only the first.
            own, seen = await self._xreadgroup("0", min(count, RECOVERY_READ), None)
            if not seen:
                self._backlog_done = True
            elif kept := await self._screen(own):
                return kept
        now = time.monotonic()
        if now - self._last_claim >= self.claim_idle_ms / 1000 / 2:
            claimed = await self.reclaim(count)
            if claimed:
                return claimed
        return (await self._xreadgroup(">", count, block_ms))[0]

    async def reclaim(self, count: int = 100) -> list[StreamEntry]:
        """Take over entries another consumer left idle (it crashed or hangs)."""
        self._last_claim = time.monotonic()
        result = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        next_cursor, messages = result[0], result[1]
        self._claim_cursor = str(next_cursor)
        entries = [StreamEntry(str(i), dict(f)) for i, f in messages if f is not None]
        if entries:
            log.info("%s/%s: reclaimed %d idle entries", self.stream, self.group, len(entries))
            return await self._screen(entries)
        return []

    async def trim_acknowledged(self, max_age_s: float, *, now: float | None = None) -> int:
        """Trim entries older than `max_age_s` that every group of the stream has
        acknowledged (XTRIM MINID): never an entry a group still holds or has not read.
        Returns how many entries were removed."""
        cutoff_ms = int(((now if now is not None else time.time()) - max_age_s) * 1000)
        floor = cutoff_ms
        try:
            groups: Any = await self.redis.xinfo_groups(self.stream)
        except ResponseError:  # no stream yet
            return 0
        for g in groups:
            last = str(g.get("last-delivered-id", "0-0"))
            floor = min(floor, int(last.split("-")[0]) + 1 if last != "0-0" else 0)
            if int(g.get("pending", 0)):
                summary: Any = await self.redis.xpending(self.stream, str(g.get("name")))
                oldest = summary.get("min") if isinstance(summary, dict) else None
                if oldest:
                    floor = min(floor, int(str(oldest).split("-")[0]))
        if floor <= 0:
            return 0
        removed: Any = await self.redis.xtrim(self.stream, minid=f"{floor}-0", approximate=False)
        return int(removed or 0)

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        """Park an entry for an admin to inspect or retry, and acknowledge it here."""
        async with self.redis.pipeline(transaction=True) as pipe:
            dead: dict[Any, Any] = {
                **entry.fields,
                "_stream": self.stream,
                "_group": self.group,
                "_id": entry.id,
                "_reason": reason[:500],
                "_deliveries": str(entry.deliveries),
                "_at": str(int(time.time())),
            }
            pipe.xadd(self.dead_letter_stream, dead, maxlen=self.dead_maxlen, approximate=True)
            pipe.xack(self.stream, self.group, entry.id)
            await pipe.execute()
        log.warning("%s/%s: entry %s dead-lettered: %s", self.stream, self.group, entry.id, reason)

    async def _xreadgroup(
        self, start: str, count: int, block_ms: int | None
    ) -> tuple[list[StreamEntry], int]:
        """The entries read, and how many the reply held (entries trimmed away while pending
        are acknowledged and left out)."""
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        entries: list[StreamEntry] = []
        seen = 0
        for _stream, messages in reply or []:
            for entry_id, fields in messages:
                seen += 1
                if fields is None:  # trimmed away while pending: nothing left to process
                    await self.ack(str(entry_id))
                    continue
                entries.append(StreamEntry(str(entry_id), dict(fields)))
        return entries, seen

    async def _screen(self, entries: Sequence[StreamEntry]) -> list[StreamEntry]:
        """Attach delivery counts to redelivered entries; dead-letter those over the limit."""
        if not entries:
            return []
        detail = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=entries[0].id,
            max=entries[-1].id,
            count=len(entries) * 2 + 10,
            consumername=self.consumer,
        )
        counts = {str(d["message_id"]): int(d["times_delivered"]) for d in detail}
        keep: list[StreamEntry] = []
        for entry in entries:
            tries = counts.get(entry.id, 1)
            screened = StreamEntry(entry.id, entry.fields, tries)
            if tries > self.max_deliveries:
                await self.dead_letter(screened, f"delivered {tries} times without success")
            else:
                keep.append(screened)
        return keep


async def stream_stats(
    redis: aioredis.Redis, stream: str, group: str, dead_letter_stream: str
) -> StreamStats:
    length = int(await redis.xlen(stream))
    dead = int(await redis.xlen(dead_letter_stream))
    pending = 0
    lag: int | None = None
    consumers = 0
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet
        groups = []
    for g in groups:
        if g.get("name") == group:
            pending = int(g.get("pending", 0))
            consumers = int(g.get("consumers", 0))
            raw_lag = g.get("lag")
            if raw_lag is not None:
                lag = int(raw_lag)
            else:  # Redis < 7 has no lag field: count what lies past last-delivered-id
                after: Any = await redis.xrange(
                    stream, min=f"({g.get('last-delivered-id', '0-0')}", count=LAG_COUNT_CAP
                )
                lag = len(after)
    return StreamStats(stream, group, length, pending, lag, consumers, dead)


async def retry_dead_letter(redis: aioredis.Redis, dead_letter_stream: str, entry_id: str) -> bool:
    """Put a dead-lettered entry back on its stream (admin 'retry'). False if it is gone."""
    found: Any = await redis.xrange(dead_letter_stream, min=entry_id, max=entry_id)
    if not found:
        return False
    _id, fields = found[0]
    stream = fields.get("_stream")
    if not stream:
        return False
    original: dict[Any, Any] = {k: v for k, v in fields.items() if not k.startswith("_")}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, original, maxlen=DEFAULT_MAXLEN, approximate=True)
        pipe.xdel(dead_letter_stream, entry_id)
        await pipe.execute()
    return True
