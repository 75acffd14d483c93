"""Analysts' watches in Redis, and the change feed that keeps every triage index current.

Every change appends the watch id to `keys.WATCH_CHANGES`; each triage worker tails that stream
(plain XREAD, not a group: every worker must see every change) and re-reads only the watches
named there, so a watch added through the bot is live in all workers within a second without
rebuilding the index.

A watch may be linked to a shared (team-wide) watch (`shared` field, see bot/storage/shared.py):
it is the subscriber's own watch, so triage, mutes and the change feed treat it like any other;
its query and priority follow the shared watch, and removing it ends the subscription.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.triage.priority import PRIORITIES

MAX_WATCHES_PER_ANALYST = 200
CHANGES_MAXLEN = 10_000


class WatchLimitError(ValueError):
    """The analyst already has the most watches allowed."""


# Removing a linked watch ends its subscription, but only if the subscription still names this
# watch (a resubscribe may have replaced it).
_UNLINK = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Watch:
    id: int
    owner_id: int
    query: str
    canonical: str
    priority: str
    paused: bool
    created_at: float
    shared: int | None = None  # the shared watch this one follows, if any

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Watch:
        return cls(
            id=int(data["id"]),
            owner_id=int(data["owner"]),
            query=data["query"],
            canonical=data.get("canonical", data["query"]),
            priority=data.get("priority", "normal"),
            paused=data.get("paused") == "1",
            created_at=float(data.get("created_at", "0")),
            shared=int(data["shared"]) if data.get("shared") else None,
        )


def canonical_query(query: str) -> str:
    """Parse (raising QueryError with position and expectation) and print back canonically."""
    from bot.triage.query import parse_query  # the triage core is pure; imported on use

    return str(parse_query(query))


class WatchRepository:
    def __init__(self, redis: aioredis.Redis, *, max_per_analyst: int | None = None) -> None:
        self._redis = redis
        # MAX_WATCHES (None: the default): one analyst's flood of /watch cannot grow the index.
        self._max = max_per_analyst
        self._last_seq = 0
        self._unlink: Any = redis.register_script(_UNLINK)

    async def add(
        self, owner_id: int, query: str, priority: str = "normal", *, shared: int | None = None
    ) -> Watch:
        """Validate and store a watch (linked to shared watch `shared` if given). Raises
        QueryError, WatchLimitError or ValueError."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        query = query.strip()
        canonical = canonical_query(query)
        owned: Any = await self._redis.scard(keys.watches_of(owner_id))
        limit = self._max or MAX_WATCHES_PER_ANALYST
        if int(owned) >= limit:
            raise WatchLimitError(f"you already have {limit} watches; remove one first")
        watch_id = int(await self._redis.incr(keys.WATCH_SEQ))
        watch = Watch(watch_id, owner_id, query, canonical, priority, False, time.time(), shared)
        fields: dict[Any, Any] = {
            "id": str(watch_id),
            "owner": str(owner_id),
            "query": query,
            "canonical": canonical,
            "priority": priority,
            "paused": "0",
            "created_at": f"{watch.created_at:.3f}",
        }
        if shared is not None:
            fields["shared"] = str(shared)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.watch(watch_id), mapping=fields)
            pipe.sadd(keys.WATCHES_ALL, str(watch_id))
            pipe.sadd(keys.watches_of(owner_id), str(watch_id))
            await pipe.execute()
        await self._changed(watch_id)
        return watch

    async def get(self, watch_id: int) -> Watch | None:
        data: Any = await self._redis.hgetall(keys.watch(watch_id))
        return Watch.from_hash(data) if data else None

    async def get_many(self, watch_ids: list[int]) -> list[Watch]:
        if not watch_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for watch_id in watch_ids:
                pipe.hgetall(keys.watch(watch_id))
            rows = await pipe.execute()
        return [Watch.from_hash(row) for row in rows if row]

    async def list_for(self, owner_id: int) -> list[Watch]:
        ids: Any = await self._redis.smembers(keys.watches_of(owner_id))
        return sorted(await self.get_many([int(i) for i in ids]), key=lambda w: w.id)

    async def all(self) -> list[Watch]:
        ids: Any = await self._redis.smembers(keys.WATCHES_ALL)
        return sorted(await self.get_many([int(i) for i in ids]), key=lambda w: w.id)

    async def all_active(self) -> list[Watch]:
        return [w for w in await self.all() if not w.paused]

    async def remove(self, watch_id: int, owner_id: int) -> bool:
        watch = await self.get(watch_id)
        if watch is None or watch.owner_id != owner_id:
            return False
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.watch(watch_id))
            pipe.srem(keys.WATCHES_ALL, str(watch_id))
            pipe.srem(keys.watches_of(owner_id), str(watch_id))
            await pipe.execute()
        if watch.shared is not None:
            await self._unlink(
                keys=[keys.shared_subscribers(watch.shared)], args=[owner_id, watch_id]
            )
        await self._changed(watch_id)
        return True

    async def set_paused(self, watch_id: int, owner_id: int, paused: bool) -> bool:
        return await self._update(watch_id, owner_id, "paused", "1" if paused else "0")

    async def set_priority(self, watch_id: int, owner_id: int, priority: str) -> bool:
        """The owner's choice; False for a watch linked to a shared one (admins set that)."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        return await self._update(watch_id, owner_id, "priority", priority, own_only=True)

    async def follow_shared(self, watch_id: int, shared_id: int, priority: str) -> bool:
        """Give a linked watch its shared watch's new priority (through the change feed)."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        watch = await self.get(watch_id)
        if watch is None or watch.shared != shared_id:
            return False
        if watch.priority != priority:
            await self._redis.hset(keys.watch(watch_id), "priority", priority)
            await self._changed(watch_id)
        return True

    async def mirror(self, watch_id: int, owner_id: int, query: str, priority: str) -> bool:
        """Give a copy of another watch (a desk's route of an analyst's own watch) that
        watch's query and priority (through the change feed). Raises QueryError."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        watch = await self.get(watch_id)
        if watch is None or watch.owner_id != owner_id or watch.shared is not None:
            return False
        query = query.strip()
        if (watch.query, watch.priority) == (query, priority):
            return True
        fields: dict[Any, Any] = {
            "query": query,
            "canonical": canonical_query(query),
            "priority": priority,
        }
        await self._redis.hset(keys.watch(watch_id), mapping=fields)
        await self._changed(watch_id)
        return True

    async def changes_cursor(self) -> str:
        """The id of the newest change, to start tailing from after a full load."""
        last: Any = await self._redis.xrevrange(keys.WATCH_CHANGES, count=1)
        return str(last[0][0]) if last else "0-0"

    async def changes_since(
        self, cursor: str, block_ms: int | None = None
    ) -> tuple[str, set[int] | None]:
        """Watch ids changed after `cursor`, and the new cursor. None instead of a set means
        changes were trimmed away before this follower read them: reload everything."""
        reply: Any = await self._redis.xread(
            {keys.WATCH_CHANGES: cursor}, count=1000, block=block_ms
        )
        changed: set[int] = set()
        gap = False
        for _stream, messages in reply or []:
            for entry_id, fields in messages:
                seq = int(fields.get("seq", "0"))
                if cursor != "0-0" and self._last_seq and seq > self._last_seq + 1:
                    gap = True
                self._last_seq = max(self._last_seq, seq)
                cursor = str(entry_id)
                changed.add(int(fields["watch"]))
        return cursor, (None if gap else changed)

    async def _update(
        self, watch_id: int, owner_id: int, field: str, value: str, *, own_only: bool = False
    ) -> bool:
        watch = await self.get(watch_id)
        if watch is None or watch.owner_id != owner_id:
            return False
        if own_only and watch.shared is not None:
            return False
        await self._redis.hset(keys.watch(watch_id), field, value)
        await self._changed(watch_id)
        return True

    async def _changed(self, watch_id: int) -> None:
        seq = int(await self._redis.incr(keys.WATCH_CHANGES + ":seq"))
        await self._redis.xadd(
            keys.WATCH_CHANGES,
            {"watch": str(watch_id), "seq": str(seq)},
            maxlen=CHANGES_MAXLEN,
            approximate=True,
        )
