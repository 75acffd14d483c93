"""Dead letters: stream entries that could not be processed (a poison post, an alert Telegram
refused or that failed every retry), kept for admins to read and retry.

Each stream of `keys.STREAMS` has its own dead-letter stream, capped (`StreamConsumer.dead_maxlen`)
and never trimmed by age: an admin decides. `index` below is the stream's place in
`keys.STREAMS`, which is what the admin keyboards carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.streams import retry_dead_letter


@dataclass(frozen=True, slots=True)
class DeadLetter:
    index: int  # the stream's place in keys.STREAMS
    stream: str  # its short name: "posts", "alerts"
    id: str
    reason: str
    at: float
    fields: dict[str, str]


def stream_name(index: int) -> str:
    return keys.STREAMS[index][0].split(":")[1].strip("{}")


def _order(entry_id: str) -> tuple[int, int]:
    ms, _sep, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (0, 0)


class DeadLetters:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def counts(self) -> list[int]:
        """Dead letters per stream, in keys.STREAMS order."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for _stream, _group, dead in keys.STREAMS:
                pipe.xlen(dead)
            replies: list[Any] = await pipe.execute()
        return [int(r) for r in replies]

    async def page(self, page: int, size: int) -> tuple[list[DeadLetter], int]:
        """One page of every stream's dead letters, newest first, and how many there are
        (each stream is read down to the page: dead letters are few)."""
        page = max(page, 0)
        async with self._redis.pipeline(transaction=False) as pipe:
            for _stream, _group, dead in keys.STREAMS:
                pipe.xlen(dead)
                pipe.xrevrange(dead, count=(page + 1) * size)
            replies: list[Any] = await pipe.execute()
        total = 0
        found: list[DeadLetter] = []
        for i in range(len(keys.STREAMS)):
            total += int(replies[2 * i])
            for entry_id, fields in replies[2 * i + 1]:
                try:
                    at = float(fields.get("_at", 0) or 0)
                except ValueError:
                    at = 0.0
                found.append(
                    DeadLetter(
                        i,
                        stream_name(i),
                        str(entry_id),
                        str(fields.get("_reason", "")),
                        at,
                        dict(fields),
                    )
                )
        found.sort(key=lambda d: _order(d.id), reverse=True)
        return found[page * size : (page + 1) * size], total

    async def retry(self, index: int, entry_id: str) -> bool:
        """Put a dead letter back on its stream. False if it is gone (or no such stream)."""
        if not 0 <= index < len(keys.STREAMS):
            return False
        return await retry_dead_letter(self._redis, keys.STREAMS[index][2], entry_id)
