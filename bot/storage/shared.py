"""Shared watches: team-wide queries kept by admins, which analysts subscribe to.

A shared watch is a record in Redis plus a hash of its subscribers (analyst id -> linked watch
id). Subscribing gives the analyst an ordinary watch of their own with a `shared` field
(`WatchRepository.add(..., shared=id)`), so triage, mutes, /watches and the watch change feed
carry it with no new path; when an admin changes the priority or removes the shared watch, the
linked watches follow through the `WatchRepository` methods that append to the change feed.

Check-and-act steps that race (two taps on Subscribe, a removal during a subscription) are Lua
scripts over the record and its subscribers, which share one hash tag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.watches import Watch, WatchRepository, canonical_query
from bot.triage.priority import PRIORITIES

MAX_NAME = 60
IN_FLIGHT = "0"  # a subscriber whose linked watch is being made

# KEYS: record, subscribers; ARGV: analyst. Claims the subscription unless the shared watch is
# gone or the analyst already has it: {status, linked watch id}.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
if redis.call('HSETNX', KEYS[2], ARGV[1], '0') == 0 then
    return {'already', redis.call('HGET', KEYS[2], ARGV[1])}
end
return {'claimed', ''}
"""

# KEYS: record, subscribers; ARGV: analyst, watch id. Records the linked watch if the shared
# watch still exists; returns its current priority (it may have changed meanwhile), or false.
_LINK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], 'priority')
"""

# KEYS: subscribers; ARGV: analyst. Drops a claim that did not become a watch.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == '0' then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

# KEYS: record, subscribers; ARGV: priority. Sets it if the shared watch exists; returns the
# subscribers' linked watch ids as a flat [analyst, watch, ...] list, or false.
_SET_PRIORITY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'priority', ARGV[1])
return redis.call('HGETALL', KEYS[2])
"""


class SharedWatchError(ValueError):
    """A subscription that cannot be made; the message says why."""


class SharedWatchGoneError(SharedWatchError):
    def __init__(self, shared_id: int) -> None:
        super().__init__(f"shared watch S{shared_id} no longer exists")
        self.shared_id = shared_id


class AlreadySubscribedError(SharedWatchError):
    def __init__(self, shared_id: int, watch_id: int) -> None:
        super().__init__(f"already subscribed to shared watch S{shared_id}")
        self.shared_id = shared_id
        self.watch_id = watch_id


@dataclass(frozen=True, slots=True)
class SharedWatch:
    id: int
    name: str
    query: str
    canonical: str
    priority: str
    created_by: int
    created_at: float
    subscribers: int = 0

    @property
    def label(self) -> str:
        return self.name or self.canonical

    @classmethod
    def from_hash(cls, data: dict[str, str], subscribers: int = 0) -> SharedWatch:
        return cls(
            id=int(data["id"]),
            name=data.get("name", ""),
            query=data["query"],
            canonical=data.get("canonical", data["query"]),
            priority=data.get("priority", "normal"),
            created_by=int(data.get("created_by", "0")),
            created_at=float(data.get("created_at", "0")),
            subscribers=subscribers,
        )


def clean_name(name: str) -> str:
    """One line, at most MAX_NAME characters."""
    return " ".join(name.split())[:MAX_NAME]


class SharedWatchRepository:
    def __init__(self, redis: aioredis.Redis, watches: WatchRepository) -> None:
        self._redis = redis
        self._watches = watches
        self._claim: Any = redis.register_script(_CLAIM)
        self._link: Any = redis.register_script(_LINK)
        self._release: Any = redis.register_script(_RELEASE)
        self._set_priority: Any = redis.register_script(_SET_PRIORITY)

    # --- admins ------------------------------------------------------------------------------
    async def add(
        self, query: str, *, name: str = "", priority: str = "normal", created_by: int = 0
    ) -> SharedWatch:
        """Validate and store a shared watch. Raises QueryError (position and expectation, as
        for /watch) or ValueError."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        query = query.strip()
        canonical = canonical_query(query)
        shared_id = int(await self._redis.incr(keys.SHARED_SEQ))
        shared = SharedWatch(
            shared_id,
            clean_name(name),
            query,
            canonical,
            priority,
            created_by,
            round(time.time(), 3),
        )
        await self._redis.hset(
            keys.shared_watch(shared_id),
            mapping={
                "id": str(shared_id),
                "name": shared.name,
                "query": query,
                "canonical": canonical,
                "priority": priority,
                "created_by": str(created_by),
                "created_at": f"{shared.created_at:.3f}",
            },
        )
        await self._redis.sadd(keys.SHARED_ALL, str(shared_id))
        return shared

    async def set_priority(self, shared_id: int, priority: str) -> SharedWatch | None:
        """Change the priority; every subscriber's linked watch follows. None if gone."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        flat: Any = await self._set_priority(
            keys=[keys.shared_watch(shared_id), keys.shared_subscribers(shared_id)],
            args=[priority],
        )
        if flat is None:
            return None
        for watch_id in _linked(flat).values():
            await self._watches.follow_shared(watch_id, shared_id, priority)
        return await self.get(shared_id)

    async def remove(self, shared_id: int) -> dict[int, int] | None:
        """Remove the shared watch and every linked watch. Returns who was subscribed (analyst
        id -> their deleted watch id; each once, to whoever removed it first), or None if it
        was already gone."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.shared_subscribers(shared_id))
            pipe.delete(keys.shared_watch(shared_id))
            pipe.delete(keys.shared_subscribers(shared_id))
            subscribers, deleted, _ = await pipe.execute()
        await self._redis.srem(keys.SHARED_ALL, str(shared_id))
        if not deleted:
            return None
        told = _linked(subscribers)
        for analyst_id, watch_id in sorted(told.items()):
            await self._watches.remove(watch_id, analyst_id)
        return told

    # --- everyone ----------------------------------------------------------------------------
    async def get(self, shared_id: int) -> SharedWatch | None:
        found = await self.get_many([shared_id])
        return found[0] if found else None

    async def get_many(self, shared_ids: list[int]) -> list[SharedWatch]:
        if not shared_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for shared_id in shared_ids:
                pipe.hgetall(keys.shared_watch(shared_id))
                pipe.hlen(keys.shared_subscribers(shared_id))
            rows = await pipe.execute()
        return [
            SharedWatch.from_hash(data, int(count))
            for data, count in zip(rows[::2], rows[1::2], strict=True)
            if data
        ]

    async def all(self) -> list[SharedWatch]:
        ids: Any = await self._redis.smembers(keys.SHARED_ALL)
        return sorted(await self.get_many([int(i) for i in ids]), key=lambda s: s.id)

    async def subscriptions(self, analyst_id: int, shared_ids: list[int]) -> dict[int, int]:
        """Which of these shared watches the analyst has: shared id -> linked watch id."""
        if not shared_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for shared_id in shared_ids:
                pipe.hget(keys.shared_subscribers(shared_id), str(analyst_id))
            rows = await pipe.execute()
        return {
            shared_id: int(raw)
            for shared_id, raw in zip(shared_ids, rows, strict=True)
            if raw and raw != IN_FLIGHT
        }

    # --- analysts ----------------------------------------------------------------------------
    async def subscribe(self, shared_id: int, analyst_id: int) -> Watch:
        """Give the analyst a watch linked to the shared one. Raises AlreadySubscribedError,
        SharedWatchGoneError, or WatchLimitError (the per-analyst limit applies)."""
        record, subscribers = keys.shared_watch(shared_id), keys.shared_subscribers(shared_id)
        status, value = await self._claim(keys=[record, subscribers], args=[analyst_id])
        if status == "gone":
            raise SharedWatchGoneError(shared_id)
        if status == "already":
            raise AlreadySubscribedError(shared_id, int(value or 0))
        try:
            shared = await self.get(shared_id)
            if shared is None:
                raise SharedWatchGoneError(shared_id)
            watch = await self._watches.add(
                analyst_id, shared.query, shared.priority, shared=shared_id
            )
        except BaseException:
            await self._release(keys=[subscribers], args=[analyst_id])
            raise
        priority: Any = await self._link(keys=[record, subscribers], args=[analyst_id, watch.id])
        if priority is None:  # removed while we made the watch: it must not outlive it
            await self._watches.remove(watch.id, analyst_id)
            raise SharedWatchGoneError(shared_id)
        if priority != watch.priority:  # changed while we made the watch
            await self._watches.follow_shared(watch.id, shared_id, priority)
        return watch

    async def unsubscribe(self, shared_id: int, analyst_id: int) -> int | None:
        """Remove the analyst's linked watch; its id, or None if they were not subscribed."""
        raw: Any = await self._redis.hget(keys.shared_subscribers(shared_id), str(analyst_id))
        if not raw or raw == IN_FLIGHT:
            return None
        watch_id = int(raw)
        if not await self._watches.remove(watch_id, analyst_id):
            # The watch is already gone; the subscription must not dangle.
            await self._redis.hdel(keys.shared_subscribers(shared_id), str(analyst_id))
        return watch_id


def _linked(flat: Any) -> dict[int, int]:
    """Subscribers hash (a dict, or HGETALL's flat list from Lua) -> analyst id -> watch id,
    without the subscriptions still in flight."""
    pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    return {int(a): int(w) for a, w in pairs if w != IN_FLIGHT}
