"""The search request stream: how the bot asks the triage role to match text.

The bot role never loads the triage models (language model, dictionaries, stemmers). `/test`
and `/search` put a `SearchRequest` on `keys.SEARCH_STREAM`; the triage role's search worker
(`bot/search.py`, consumer group `searchers`; any triage worker answers) runs it over the
archive and pushes a `SearchResult` onto the request's own reply list
(`keys.search_reply(id)`, expiring `REPLY_TTL_S` after it is written), which the bot waits on
by polling it. A request carries its deadline: one nobody waits for any more is acknowledged
without being run. Triage workers publish their presence (`keys.SEARCH_WORKERS`, a sorted set
of consumer → last beat), so the bot says at once, in a clear line, that no triage role runs
instead of waiting for the timeout.

Per analyst (`admit`, one Lua step): one search at a time (`keys.search_busy`, expiring with
the wait, released when the reply arrives) and at most `per_window` searches a `window_s`
(`keys.search_rate`, a fixed window): one analyst's flood is refused at the door and cannot
queue work ahead of another analyst's search. Everything here expires or is capped: the
stream by MAXLEN and by age, the reply lists and the per-analyst keys by TTL.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.archive import PostKey
from bot.storage.streams import StreamConsumer, StreamEntry, append

REPLY_TTL_S = 120  # a reply nobody collected (the bot timed out) is gone after this
SEARCH_MAXLEN = 10_000  # requests kept on the stream (approximate cap)
PRESENCE_S = 15.0  # a search worker not seen for this long is gone
BEAT_S = 3.0  # how often a search worker says it is there
POLL_MIN_S, POLL_MAX_S = 0.05, 0.25  # the bot's look for the reply, first and slowest

Span = tuple[int, int]
Hit = tuple[PostKey, tuple[Span, ...]]


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Per analyst: `per_window` searches a `window_s`, one at a time; `timeout_s` waited."""

    per_window: int = 10
    window_s: float = 60.0
    timeout_s: float = 90.0


class Admission(StrEnum):
    OK = "ok"
    BUSY = "busy"  # this analyst's previous search has not answered yet
    RATE = "rate"  # this analyst's searches in the window are used up


@dataclass(frozen=True, slots=True)
class Admitted:
    verdict: Admission
    token: str = ""  # releases the busy mark (OK only)
    retry_s: float = 0.0  # RATE: when the window ends


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Match `query` (as the analyst typed it) over the archive up to `at`, newest first."""

    id: str
    kind: str  # "test" | "search": only the reply's wording differs
    owner_id: int
    query: str
    at: int
    deadline: float  # unix time after which nobody waits for the reply
    max_posts: int

    @classmethod
    def new(
        cls, kind: str, owner_id: int, query: str, at: int, *, wait_s: float, max_posts: int
    ) -> SearchRequest:
        return cls(
            secrets.token_hex(8), kind, owner_id, query, at, time.time() + wait_s, max_posts
        )

    def fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "owner": str(self.owner_id),
            "query": self.query,
            "at": str(self.at),
            "deadline": repr(self.deadline),
            "max_posts": str(self.max_posts),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> SearchRequest:
        """Raises KeyError / ValueError on an entry that is not a request."""
        return cls(
            fields["id"],
            fields["kind"],
            int(fields["owner"]),
            fields["query"],
            int(fields["at"]),
            float(fields["deadline"]),
            int(fields["max_posts"]),
        )


@dataclass(frozen=True, slots=True)
class QueryProblem:
    """The query did not parse (bot.triage.query.QueryError, carried as data)."""

    message: str
    position: int


@dataclass(slots=True)
class SearchResult:
    canonical: str = ""
    scanned: int = 0
    matched: int = 0
    capped: bool = False
    hits: list[Hit] = field(default_factory=list)
    problem: QueryProblem | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "c": self.canonical,
                "s": self.scanned,
                "m": self.matched,
                "x": self.capped,
                "h": [[c, m, [list(s) for s in spans]] for (c, m), spans in self.hits],
                "e": None
                if self.problem is None
                else [self.problem.message, self.problem.position],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> SearchResult:
        data: dict[str, Any] = json.loads(raw)
        problem = data.get("e")
        return cls(
            canonical=str(data["c"]),
            scanned=int(data["s"]),
            matched=int(data["m"]),
            capped=bool(data["x"]),
            hits=[
                ((int(c), int(m)), tuple((int(a), int(b)) for a, b in spans))
                for c, m, spans in data["h"]
            ],
            problem=None if problem is None else QueryProblem(str(problem[0]), int(problem[1])),
        )


# KEYS[1] busy mark, KEYS[2] window counter; ARGV[1] busy ms, ARGV[2] limit, ARGV[3] window
# ms, ARGV[4] token. {0, pttl}: busy; {1, pttl}: over the limit; {2, 0}: admitted.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[2]) then
  return {1, redis.call('PTTL', KEYS[2])}
end
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[1])
return {2, 0}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SearchRequests:
    """Both ends of the search request stream (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, *, maxlen: int = SEARCH_MAXLEN) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._admit: Any = redis.register_script(_ADMIT)
        self._release: Any = redis.register_script(_RELEASE)

    # -- the bot's side ------------------------------------------------------------------

    async def admit(
        self, owner_id: int, *, per_window: int, window_s: float, busy_s: float
    ) -> Admitted:
        """May this analyst search now? OK marks them busy until `release` (or `busy_s`)."""
        token = secrets.token_hex(8)
        verdict, pttl = await self._admit(
            keys=[keys.search_busy(owner_id), keys.search_rate(owner_id)],
            args=[max(1, int(busy_s * 1000)), per_window, max(1, int(window_s * 1000)), token],
        )
        if int(verdict) == 2:
            return Admitted(Admission.OK, token)
        wait = max(0.0, int(pttl) / 1000)
        return Admitted(Admission.BUSY if int(verdict) == 0 else Admission.RATE, retry_s=wait)

    async def release(self, owner_id: int, token: str) -> None:
        await self._release(keys=[keys.search_busy(owner_id)], args=[token])

    async def workers(self, *, now: float | None = None) -> int:
        """How many search workers (triage roles) have said they are there lately."""
        at = now if now is not None else time.time()
        count: Any = await self._redis.zcount(keys.SEARCH_WORKERS, at - PRESENCE_S, "+inf")
        return int(count)

    async def submit(self, request: SearchRequest) -> None:
        await append(self._redis, keys.SEARCH_STREAM, request.fields(), maxlen=self._maxlen)

    async def wait(self, request_id: str, timeout_s: float) -> SearchResult | None:
        """The reply, or None if none came within `timeout_s`. Polled (LPOP every 50 ms,
        slowing to every `POLL_MAX_S`), not BLPOP: a blocking pop would hold one of the
        process's pooled connections for the whole wait, and a hundred analysts searching
        at once would starve delivery of connections."""
        key = keys.search_reply(request_id)
        give_up = time.monotonic() + timeout_s
        pause = POLL_MIN_S
        while True:
            raw: Any = await self._redis.lpop(key)
            if raw is not None:
                await self._redis.delete(key)  # a duplicate answer (a redelivery) goes too
                return SearchResult.from_json(raw.decode() if isinstance(raw, bytes) else raw)
            left = give_up - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, POLL_MAX_S)

    # -- the triage role's side ----------------------------------------------------------

    def consumer(
        self, name: str, *, max_deliveries: int = 5, claim_idle_ms: int = 60_000
    ) -> StreamConsumer:
        return StreamConsumer(
            self._redis,
            keys.SEARCH_STREAM,
            keys.SEARCH_GROUP,
            name,
            keys.SEARCH_DEAD,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
            dead_maxlen=1_000,
        )

    async def answer(
        self, consumer: StreamConsumer, entry: StreamEntry, request_id: str, result: SearchResult
    ) -> None:
        """Push the reply (expiring) and acknowledge the request in one transaction."""
        key = keys.search_reply(request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, result.to_json())
            pipe.expire(key, REPLY_TTL_S)
            pipe.xack(consumer.stream, consumer.group, entry.id)
            await pipe.execute()

    async def beat(self, name: str, *, now: float | None = None) -> None:
        at = now if now is not None else time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.SEARCH_WORKERS, {name: at})
            pipe.zremrangebyscore(keys.SEARCH_WORKERS, "-inf", at - PRESENCE_S * 4)
            await pipe.execute()

    async def leave(self, name: str) -> None:
        await self._redis.zrem(keys.SEARCH_WORKERS, name)

    async def trim(self, max_age_s: float, consumer: StreamConsumer) -> int:
        """Requests older than `max_age_s` that every group acknowledged go."""
        return await consumer.trim_acknowledged(max_age_s)
