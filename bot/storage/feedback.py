"""Analyst feedback on alerts (👍 relevant / 👎 noise, 🔕 mute, reset, learning on/off).

The bot records what the analyst said and, in the same transaction, appends an event to the
feedback stream (`keys.FEEDBACK_STREAM`), which the learner (bot/learner.py, in the triage
role) reads in consumer group `learners`: so a verdict reaches the model within seconds and
survives any crash between the two. The events only say *whose* model to rebuild; the learner
rebuilds it from the durable record, so an event delivered twice changes nothing.

Keys: `keys.feedback(analyst)`, a hash '<channel>:<message>:<watch>' -> 'relevant' | 'noise'
(what the buttons show ticked); the user hash's `learning` field ('0' = off).
"""

from __future__ import annotations

from typing import Any, Literal

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN

Verdict = Literal["relevant", "noise"]
EVENT_KINDS = frozenset({"verdict", "mute", "reset", "learning"})
FEEDBACK_MAXLEN = 100_000  # approximate; acknowledged events are also trimmed by age


def _field(channel_id: int, message_id: int, watch_id: int) -> str:
    return f"{channel_id}:{message_id}:{watch_id}"


class FeedbackRepository:
    def __init__(self, redis: aioredis.Redis, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._redis = redis
        self._maxlen = min(maxlen, FEEDBACK_MAXLEN)

    async def was_alerted(self, analyst_id: int, channel_id: int, message_id: int) -> bool:
        """Whether this analyst was sent an alert on the post (the delivery ledger): a button
        pressed on someone else's alert (forwarded to them, or in a group) is not theirs."""
        found: Any = await self._redis.exists(keys.alert_sent(analyst_id, channel_id, message_id))
        return bool(found)

    async def set(
        self, analyst_id: int, channel_id: int, message_id: int, watch_id: int, verdict: Verdict
    ) -> None:
        """Record a verdict (a change of mind replaces the earlier one) and tell the learner."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.feedback(analyst_id), _field(channel_id, message_id, watch_id), verdict)
            self._event(
                pipe,
                "verdict",
                analyst_id,
                channel=channel_id,
                message=message_id,
                watch=watch_id,
                verdict=verdict,
            )
            await pipe.execute()

    async def note_mute(self, analyst_id: int, channel_id: int) -> None:
        """A channel was muted or unmuted from an alert: the learner re-reads the mutes."""
        await self._append("mute", analyst_id, channel=channel_id)

    async def set_learning(self, analyst_id: int, on: bool) -> None:
        """`/settings learning on|off`: off removes the model from triage (verdicts are kept)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.user(analyst_id), "learning", "1" if on else "0")
            self._event(pipe, "learning", analyst_id)
            await pipe.execute()

    async def reset(self, analyst_id: int) -> None:
        """Forget every verdict of the analyst; the learner drops the model and its examples."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.feedback(analyst_id))
            self._event(pipe, "reset", analyst_id)
            await pipe.execute()

    async def get(
        self, analyst_id: int, channel_id: int, message_id: int, watch_id: int
    ) -> str | None:
        value: Any = await self._redis.hget(
            keys.feedback(analyst_id), _field(channel_id, message_id, watch_id)
        )
        return str(value) if value is not None else None

    async def all_for(self, analyst_id: int) -> dict[tuple[int, int, int], str]:
        raw: Any = await self._redis.hgetall(keys.feedback(analyst_id))
        out: dict[tuple[int, int, int], str] = {}
        for key, verdict in raw.items():
            parts = key.split(":")
            if len(parts) == 3:
                out[(int(parts[0]), int(parts[1]), int(parts[2]))] = verdict
        return out

    async def _append(self, kind: str, analyst_id: int, **fields: int | str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            self._event(pipe, kind, analyst_id, **fields)
            await pipe.execute()

    def _event(self, pipe: Any, kind: str, analyst_id: int, **fields: int | str) -> None:
        payload = {
            "kind": kind,
            "analyst": str(analyst_id),
            **{k: str(v) for k, v in fields.items()},
        }
        pipe.xadd(keys.FEEDBACK_STREAM, payload, maxlen=self._maxlen, approximate=True)
