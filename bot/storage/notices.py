"""Delivery's side of the alerts stream, other than its consumer: notices to people (admins told
that an analyst blocked the bot or a watcher went silent, digests, subscription news), held
alerts put back when their time comes, and the keep-alive claim of entries a worker still holds.

(The triage worker's alerts go through `AlertOutbox`, with their ledger.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.alerts import Notice
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN

CLAIM_CHUNK = 500


class NoticeBox:
    def __init__(self, redis: aioredis.Redis, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._redis = redis
        self._maxlen = maxlen

    async def send(self, *notices: Notice) -> int:
        """Queue notices (durable, rate-limited like alerts). Returns how many."""
        return await self.append_many([n.to_fields() for n in notices])

    async def tell(self, recipients: Iterable[int], text: str, *, html: bool = False) -> int:
        return await self.send(*(Notice(r, text, html) for r in recipients))

    async def append_many(self, entries: Sequence[Mapping[str, str]]) -> int:
        """Append stream payloads as they are (held alerts going back out), in one trip."""
        if not entries:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for fields in entries:
                payload: dict[Any, Any] = dict(fields)
                pipe.xadd(keys.ALERTS_STREAM, payload, maxlen=self._maxlen, approximate=True)
            await pipe.execute()
        return len(entries)

    async def keep_claimed(self, consumer: str, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of entries `consumer` still works on, so no other delivery
        worker reclaims them (XCLAIM to itself, JUSTID). Best effort."""
        ids: list[Any] = list(entry_ids)
        for i in range(0, len(ids), CLAIM_CHUNK):
            with contextlib.suppress(aioredis.RedisError):
                await self._redis.xclaim(
                    keys.ALERTS_STREAM,
                    keys.DELIVERY_GROUP,
                    consumer,
                    min_idle_time=0,
                    message_ids=ids[i : i + CLAIM_CHUNK],
                    justid=True,
                )
