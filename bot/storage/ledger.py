"""The delivery ledger and the log of what each analyst was sent.

`keys.alert_sent(analyst, channel, message)` is a hash per (analyst, post): field
`<kind>:<version>` is `sending:<process token>` while a send is in flight and `sent:<chat
message id>` after it; `meta` is the first alert's fields without the post (what a later "also
in N channels" edit re-renders from, with the archived post); `also:<n>` marks an edit done.
Each hash expires `ttl_s` after its last send, like the triage ledger.

`keys.user_alerts(analyst)` is a stream of the alerts delivered to them, for /export and /stats,
kept for the same window (trimmed by age at each append) and capped at `log_maxlen`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.alerts import AlertJob
from bot.storage import keys

LEDGER_TTL_S = 30 * 86400
USER_ALERTS_MAXLEN = 10_000
READ_PAGE = 1000


@dataclass(frozen=True, slots=True)
class FirstAlert:
    """What the ledger knows of the first alert of a post, for an "also in" edit."""

    state: str | None  # the `new:0` field
    meta: dict[str, str] | None
    done: bool  # this edit (`also:<n>`) was made already

    @property
    def chat_message_id(self) -> int | None:
        if self.state and self.state.startswith("sent:"):
            return int(self.state.split(":", 1)[1])
        return None


@dataclass(frozen=True, slots=True)
class Delivered:
    """One entry of an analyst's delivered-alert log."""

    id: str
    fields: dict[str, str]


def _mark(job: AlertJob) -> str:
    return f"{job.kind}:{job.post.version}"


def _key(job: AlertJob) -> str:
    return keys.alert_sent(job.analyst_id, job.post.channel_id, job.post.message_id)


class DeliveryLedger:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_s: int = LEDGER_TTL_S,
        log_maxlen: int = USER_ALERTS_MAXLEN,
    ) -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self.log_maxlen = log_maxlen

    async def state(self, job: AlertJob) -> str | None:
        found: Any = await self._redis.hget(_key(job), _mark(job))
        return None if found is None else str(found)

    async def sending(self, job: AlertJob, token: str) -> None:
        key = _key(job)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, _mark(job), f"sending:{token}")
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def clear(self, job: AlertJob) -> None:
        """The send failed: no mark, so the next try (or worker) sends it."""
        await self._redis.hdel(_key(job), _mark(job))

    async def sent(
        self, job: AlertJob, chat_message_id: int, *, ack: str, now: float | None = None
    ) -> None:
        """Record a send, log it for the analyst and acknowledge the stream entry `ack`, in
        one round trip."""
        key = _key(job)
        mark = _mark(job)
        fields: dict[Any, Any] = {
            "channel": str(job.post.channel_id),
            "message": str(job.post.message_id),
            "watch": str(job.watch_id),
            "priority": job.priority,
            "kind": job.kind,
            "chat_message": str(chat_message_id),
            "lang": job.language,
            "query": job.watch_query[:500],
            "at": f"{time.time() if now is None else now:.3f}",
        }
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mark, f"sent:{chat_message_id}")
            if job.kind == "new":  # what a later "also in N channels" edit re-renders from
                meta = {k: v for k, v in job.to_fields().items() if k != "post"}
                pipe.hset(key, "meta", json.dumps(meta, ensure_ascii=False))
            pipe.expire(key, self.ttl_s)
            # The log is kept for the ledger window (MINID, by age) and capped by count.
            log = keys.user_alerts(job.analyst_id)
            oldest_ms = int(((time.time() if now is None else now) - self.ttl_s) * 1000)
            pipe.xadd(log, fields, minid=str(max(0, oldest_ms)), approximate=True)
            pipe.xtrim(log, maxlen=self.log_maxlen, approximate=True)
            pipe.expire(log, self.ttl_s)
            pipe.xack(keys.ALERTS_STREAM, keys.DELIVERY_GROUP, ack)
            await pipe.execute()

    async def first_alert(self, job: AlertJob) -> FirstAlert:
        """The ledger of the first alert `job` (kind "also") joins."""
        mark = f"also:{len(job.also_in)}"
        found: Any = await self._redis.hmget(_key(job), "new:0", "meta", mark)
        state, meta, done = found
        parsed: dict[str, str] | None = None
        if meta:
            try:
                loaded = json.loads(str(meta))
                parsed = {str(k): str(v) for k, v in loaded.items()}
            except (json.JSONDecodeError, AttributeError):
                parsed = None
        return FirstAlert(None if state is None else str(state), parsed, done is not None)

    async def joined(self, job: AlertJob, *, ack: str) -> None:
        """The "also in" edit was made: mark it and acknowledge `ack`, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(_key(job), f"also:{len(job.also_in)}", "1")
            pipe.xack(keys.ALERTS_STREAM, keys.DELIVERY_GROUP, ack)
            await pipe.execute()

    # --- the analyst's log -----------------------------------------------------------------
    async def delivered(self, analyst_id: int, since: float) -> list[Delivered]:
        """Every logged alert of an analyst since `since` (unix), oldest first."""
        stream = keys.user_alerts(analyst_id)
        start = f"{max(0, int(since * 1000))}-0"
        out: list[Delivered] = []
        while True:
            page: Any = await self._redis.xrange(stream, min=start, max="+", count=READ_PAGE)
            for entry_id, fields in page:
                out.append(Delivered(str(entry_id), dict(fields)))
            if len(page) < READ_PAGE:
                return out
            start = f"({page[-1][0]}"

    async def metas(self, analyst_id: int, posts: Sequence[tuple[int, int]]) -> list[str | None]:
        """The ledger's `meta` of each (channel, message) the analyst was alerted on."""
        if not posts:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel_id, message_id in posts:
                pipe.hget(keys.alert_sent(analyst_id, channel_id, message_id), "meta")
            rows: Any = await pipe.execute()
        return [None if r is None else str(r) for r in rows]

    async def delivered_count(self, analyst_id: int) -> int:
        return int(await self._redis.xlen(keys.user_alerts(analyst_id)))


def fields_of(meta: Mapping[str, str], post_json: str) -> dict[str, str]:
    """An alert job's stream fields from a ledger meta and the post's JSON."""
    return {**meta, "post": post_json}
