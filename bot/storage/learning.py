"""Learned relevance in Redis: the examples each model is trained from, the models every
triage worker scores with, the desk model, and the counters `/learning` and the caps read.

- `keys.learn_examples(analyst)`: hash '<channel>:<msg>' -> JSON {verdict, watch, language,
  post, at}: what the analyst judged, with the post as it was (the archive expires; a model
  must not lose its verdicts with it). At most `max_examples` per analyst, the oldest go first.
- `keys.MODELS` / `keys.MODELS_META`: per analyst, the model (base64 of its versioned bytes)
  and a JSON summary (verdict counts, strongest words, when trained). `keys.MODELS_VERSION` is
  bumped on every change, so a triage worker polls one integer and reloads only on a change:
  every worker on every machine scores with the same models.
- `keys.DESK_MODEL`: the team-wide model and its summary; `keys.DESK_LOCK`: one learner
  retrains it at a time.
- `keys.learn_moved(day)` and `keys.suggestions_of(day)`: per UTC day, alerts the models moved
  and suggestions sent, per analyst (queued on the triage worker's own write pipeline; they
  expire after `COUNTER_DAYS`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from bot.models import Post, PostFormatError
from bot.storage import keys

log = logging.getLogger(__name__)

MAX_EXAMPLES = 400  # per analyst: a model of 400 verdicts is as good as one of 4,000 here
COUNTER_DAYS = 8  # the 7 days /learning shows, and today


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


@dataclass(frozen=True, slots=True)
class StoredExample:
    """One verdict as the learner keeps it."""

    channel_id: int
    message_id: int
    verdict: str  # relevant | noise
    watch_id: int
    language: str
    post: Post
    at: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "verdict": self.verdict,
                "watch": self.watch_id,
                "language": self.language,
                "post": self.post.to_json(),
                "at": round(self.at, 3),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, field: str, raw: str) -> StoredExample | None:
        try:
            channel, message = (int(x) for x in field.split(":"))
            data = json.loads(raw)
            verdict = str(data["verdict"])
            if verdict not in ("relevant", "noise"):
                return None
            return cls(
                channel,
                message,
                verdict,
                int(data.get("watch", 0)),
                str(data.get("language", "und")),
                Post.from_json(data["post"]),
                float(data.get("at", 0.0)),
            )
        except (ValueError, KeyError, TypeError, PostFormatError, json.JSONDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """What `/learning` and the System view show of a model (written by the learner)."""

    relevant: int = 0
    noise: int = 0
    up_words: tuple[str, ...] = ()
    down_words: tuple[str, ...] = ()
    trained_at: float = 0.0
    learning: bool = True  # False: learning is off, the model is not used
    cold_start: int = 0  # verdicts of each kind the model needs before it moves anything

    def to_json(self) -> str:
        return json.dumps(
            {
                "relevant": self.relevant,
                "noise": self.noise,
                "up": list(self.up_words),
                "down": list(self.down_words),
                "trained_at": round(self.trained_at, 3),
                "learning": self.learning,
                "cold_start": self.cold_start,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, raw: str | None) -> ModelSummary | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                int(data.get("relevant", 0)),
                int(data.get("noise", 0)),
                tuple(str(w) for w in data.get("up", ())),
                tuple(str(w) for w in data.get("down", ())),
                float(data.get("trained_at", 0.0)),
                bool(data.get("learning", True)),
                int(data.get("cold_start", 0)),
            )
        except (ValueError, TypeError, AttributeError, json.JSONDecodeError):
            return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


class LearningRepository:
    def __init__(self, redis: aioredis.Redis, *, max_examples: int = MAX_EXAMPLES) -> None:
        self._redis = redis
        self.max_examples = max_examples

    # --- the learner ------------------------------------------------------------------------

    async def put_example(self, analyst_id: int, example: StoredExample) -> None:
        """Keep (or replace: a change of mind) one verdict; the oldest past the cap go."""
        key = keys.learn_examples(analyst_id)
        field = f"{example.channel_id}:{example.message_id}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, field, example.to_json())
            pipe.hlen(key)
            _, size = await pipe.execute()
        if int(size) > self.max_examples:
            kept = await self.examples(analyst_id)
            kept.sort(key=lambda e: e.at)
            drop = [
                f"{e.channel_id}:{e.message_id}" for e in kept[: len(kept) - self.max_examples]
            ]
            if drop:
                await self._redis.hdel(key, *drop)

    async def forget_example(self, analyst_id: int, channel_id: int, message_id: int) -> None:
        await self._redis.hdel(keys.learn_examples(analyst_id), f"{channel_id}:{message_id}")

    async def examples(self, analyst_id: int) -> list[StoredExample]:
        raw: Any = await self._redis.hgetall(keys.learn_examples(analyst_id))
        out = []
        for field, value in raw.items():
            example = StoredExample.from_json(field, value)
            if example is None:
                log.warning("learning: unreadable example %s of %s dropped", field, analyst_id)
                continue
            out.append(example)
        out.sort(key=lambda e: (e.at, e.channel_id, e.message_id))
        return out

    async def clear(self, analyst_id: int) -> None:
        """Reset: the examples, the model and its summary go."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.learn_examples(analyst_id))
            pipe.hdel(keys.MODELS, str(analyst_id))
            pipe.hdel(keys.MODELS_META, str(analyst_id))
            pipe.incr(keys.MODELS_VERSION)
            await pipe.execute()

    async def publish(self, analyst_id: int, model: bytes | None, summary: ModelSummary) -> None:
        """Install the analyst's model for every triage worker (None: withdraw it, e.g.
        learning off), with its summary."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if model is None:
                pipe.hdel(keys.MODELS, str(analyst_id))
            else:
                pipe.hset(keys.MODELS, str(analyst_id), _b64(model))
            pipe.hset(keys.MODELS_META, str(analyst_id), summary.to_json())
            pipe.incr(keys.MODELS_VERSION)
            await pipe.execute()

    async def publish_desk(self, model: bytes, meta: Mapping[str, Any]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.DESK_MODEL,
                mapping={"model": _b64(model), "meta": json.dumps(dict(meta), ensure_ascii=False)},
            )
            pipe.incr(keys.MODELS_VERSION)
            await pipe.execute()

    async def desk_lock(self, owner: str, ttl_s: int) -> bool:
        """Whether this learner may retrain the desk model now (one at a time, any machine)."""
        return bool(await self._redis.set(keys.DESK_LOCK, owner, nx=True, ex=ttl_s))

    # --- triage workers ---------------------------------------------------------------------

    async def version(self) -> int:
        raw: Any = await self._redis.get(keys.MODELS_VERSION)
        return int(raw or 0)

    async def models(self) -> tuple[int, dict[int, bytes], bytes | None]:
        """(version, every analyst's model bytes, the desk model's bytes) in one round trip."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.MODELS_VERSION)
            pipe.hgetall(keys.MODELS)
            pipe.hget(keys.DESK_MODEL, "model")
            version, raw, desk = await pipe.execute()
        models = {}
        for analyst, text in (raw or {}).items():
            data = _unb64(text)
            if data is None:
                log.warning("learning: model of %s is not base64; ignored", analyst)
                continue
            models[int(analyst)] = data
        return int(version or 0), models, (_unb64(desk) if desk else None)

    def counter_commands(
        self, pipe: Any, moved: Mapping[int, int], suggested: Mapping[int, int], now: float
    ) -> None:
        """Queue today's counters on a caller's pipeline (the triage worker's write)."""
        day = day_of(now)
        ttl = COUNTER_DAYS * 86400
        for key, counts in ((keys.learn_moved(day), moved), (keys.suggestions_of(day), suggested)):
            if not counts:
                continue
            for analyst, n in counts.items():
                pipe.hincrby(key, str(analyst), n)
            pipe.expire(key, ttl)

    async def suggested_today(self, now: float | None = None) -> dict[int, int]:
        raw: Any = await self._redis.hgetall(keys.suggestions_of(day_of(now or time.time())))
        return {int(k): int(v) for k, v in (raw or {}).items()}

    # --- what analysts and admins read ------------------------------------------------------

    async def summary(self, analyst_id: int) -> ModelSummary | None:
        raw: Any = await self._redis.hget(keys.MODELS_META, str(analyst_id))
        return ModelSummary.from_json(raw)

    async def moved_since(self, analyst_id: int, days: int = 7, now: float | None = None) -> int:
        """Alerts the analyst's model moved (up or down) over the last `days` UTC days."""
        today = datetime.fromtimestamp(now or time.time(), UTC)
        async with self._redis.pipeline(transaction=False) as pipe:
            for back in range(days):
                pipe.hget(
                    keys.learn_moved((today - timedelta(days=back)).strftime("%Y%m%d")),
                    str(analyst_id),
                )
            replies: list[Any] = await pipe.execute()
        return sum(int(r) for r in replies if r)

    async def desk_summary(self) -> dict[str, Any]:
        raw: Any = await self._redis.hget(keys.DESK_MODEL, "meta")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    async def system_state(self, now: float | None = None) -> SystemState:
        """What the admins' System view shows of learning, in one round trip."""
        day = day_of(now or time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.MODELS)
            pipe.hget(keys.DESK_MODEL, "meta")
            pipe.hvals(keys.learn_moved(day))
            pipe.hvals(keys.suggestions_of(day))
            models, desk, moved, suggested = await pipe.execute()
        try:
            meta = json.loads(desk) if desk else {}
        except json.JSONDecodeError:
            meta = {}
        return SystemState(
            models=int(models),
            moved_today=sum(int(v) for v in moved or ()),
            suggested_today=sum(int(v) for v in suggested or ()),
            desk=meta if isinstance(meta, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class SystemState:
    models: int
    moved_today: int
    suggested_today: int
    desk: dict[str, Any]
