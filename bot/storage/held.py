"""Alerts held back from an analyst: during quiet hours ("quiet", released when they end), below
their instant threshold or judged noise by their learned model ("digest", sent in their next
digest), or while they have blocked the bot ("blocked", released at their next /start).

Keys: `keys.user_held(id)` a list of JSON payloads `{"why", "at", "fields"}` (the alerts-stream
entry as it was), `keys.HELD_DUE` a sorted set id -> when their releasable alerts go out,
`keys.digest_claim(id, period)` one digest per analyst and period whichever worker sends it.

Bounded: each list keeps at most `cap` alerts (the newest) and expires `ttl_s` after the last
alert held, so an analyst who blocked the bot and never came back costs nothing after the window.
(`bot/storage/users.py` still has the functions this replaces, on the same keys.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

HELD_CAP = 10_000
HELD_TTL_S = 30 * 86400
DIGEST_CLAIM_TTL_S = 2 * 86400


class HoldReason(StrEnum):
    QUIET = "quiet"
    DIGEST = "digest"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class HeldAlert:
    raw: str  # the list element, to remove exactly this one
    why: str
    fields: dict[str, str]
    at: float = 0.0  # when it was held


# KEYS[1] HELD_DUE; ARGV[1] now, ARGV[2] lease seconds, ARGV[3] max users
# Leases due users (score <= now) for ARGV[2] seconds; returns their ids.
_LEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], lease, id) end
return due
"""


def _parse(raw: str) -> HeldAlert | None:
    try:
        data = json.loads(raw)
        return HeldAlert(raw, str(data["why"]), dict(data["fields"]), float(data.get("at", 0)))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class HeldRepository:
    def __init__(
        self, redis: aioredis.Redis, *, ttl_s: int = HELD_TTL_S, cap: int = HELD_CAP
    ) -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self.cap = cap
        self._lease: Any = redis.register_script(_LEASE_DUE)

    async def hold(
        self,
        user_id: int,
        why: str,
        fields: Mapping[str, str],
        release_at: float | None,
        *,
        now: float | None = None,
    ) -> None:
        """Park an alert. With `release_at`, it goes back to the alerts stream then (or
        earlier, if another alert of theirs is due sooner)."""
        at = time.time() if now is None else now
        raw = json.dumps({"why": str(why), "at": at, "fields": dict(fields)}, ensure_ascii=False)
        key = keys.user_held(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, raw)
            pipe.ltrim(key, -self.cap, -1)
            pipe.expire(key, self.ttl_s)
            if release_at is not None:
                # LT: an earlier release time wins; a missing member is added.
                pipe.zadd(keys.HELD_DUE, {str(user_id): release_at}, lt=True)
            await pipe.execute()

    async def release_soon(self, user_id: int, *, now: float | None = None) -> None:
        """Let the delivery worker release this person's held (non-digest) alerts now."""
        held: Any = await self._redis.llen(keys.user_held(user_id))
        if int(held):
            at = time.time() if now is None else now
            await self._redis.zadd(keys.HELD_DUE, {str(user_id): at})

    async def lease_due(self, now: float, lease_s: float = 60.0, limit: int = 100) -> list[int]:
        """Analysts whose held alerts are due, each leased for `lease_s` so that one worker
        releases them."""
        ids = await self._lease(keys=[keys.HELD_DUE], args=[f"{now:.3f}", lease_s, limit])
        return [int(i) for i in ids]

    async def held(self, user_id: int) -> list[HeldAlert]:
        rows: Any = await self._redis.lrange(keys.user_held(user_id), 0, -1)
        return [h for h in (_parse(str(r)) for r in rows) if h is not None]

    async def remove(self, user_id: int, items: Sequence[HeldAlert]) -> None:
        if not items:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.lrem(keys.user_held(user_id), 1, item.raw)
            await pipe.execute()

    async def forget(self, user_id: int, released: Sequence[HeldAlert]) -> None:
        """Remove released entries; drop the due mark when nothing releasable is left."""
        await self.remove(user_id, released)
        left = [h for h in await self.held(user_id) if h.why != HoldReason.DIGEST]
        if not left:
            await self._redis.zrem(keys.HELD_DUE, str(user_id))

    async def claim_digest(self, user_id: int, period_start: float) -> bool:
        """True for the one worker that sends this analyst's digest of this period."""
        claimed = await self._redis.set(
            keys.digest_claim(user_id, int(period_start)), "1", nx=True, ex=DIGEST_CLAIM_TTL_S
        )
        return bool(claimed)
